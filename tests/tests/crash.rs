//! Crash safety of the store: `ig-image` killed with SIGKILL at random moments during build,
//! tag, import, remove and pull (through a fault-injecting proxy in front of a real registry)
//! never loses a tag that existed and never leaves a store the independent checker refuses;
//! and 16 writers at once lose nothing.

use std::collections::BTreeSet;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use ig_image_tests::registry::{FaultPlan, FaultProxy, Registry, require_registry_tools};
use ig_image_tests::{TempStore, assert_success, run, sample};

/// A small deterministic generator (xorshift64*), seeded from the clock and printed, so that a
/// failing sequence can be replayed with `IG_CRASH_SEED`.
struct Rng(u64);

impl Rng {
    fn from_env_or_clock() -> Rng {
        let seed = std::env::var("IG_CRASH_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(1, |d| d.as_nanos() as u64)
                    | 1
            });
        eprintln!("crash test seed: IG_CRASH_SEED={seed}");
        Rng(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `0..n` (n > 0).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// The tags in the store's `index.json` (read directly: no ig-image involved).
fn tags(t: &TempStore) -> BTreeSet<String> {
    let Ok(text) = std::fs::read(t.store().join("index.json")) else {
        return BTreeSet::new();
    };
    let index: serde_json::Value = serde_json::from_slice(&text).expect("index.json is JSON");
    index["manifests"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| {
            e["annotations"]["org.opencontainers.image.ref.name"]
                .as_str()
                .map(str::to_string)
        })
        .collect()
}

fn spawn(mut cmd: Command) -> Child {
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .stdin(std::process::Stdio::null())
        .spawn()
        .expect("spawn ig-image")
}

/// Runs `cmd` and sends SIGKILL after `delay`; returns whether it was still running then.
fn kill_after(cmd: Command, delay: Duration) -> bool {
    let mut child = spawn(cmd);
    std::thread::sleep(delay);
    let running = child.try_wait().expect("try_wait").is_none();
    // SAFETY: signals our own child, which has not been reaped (try_wait returned None or it
    // already exited, in which case the signal fails harmlessly with ESRCH).
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGKILL);
    }
    child.wait().expect("wait");
    running
}

/// How long an unkilled run of `cmd` takes.
fn timed(mut cmd: Command) -> Duration {
    let start = Instant::now();
    let out = cmd.output().expect("run ig-image");
    assert_success(&out);
    start.elapsed()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Build,
    Tag,
    Import,
    Remove,
    Pull,
}

#[test]
fn sigkill_at_random_moments_loses_no_tag_and_leaves_a_valid_store() {
    let with_registry = require_registry_tools("crash_kill_loop");
    let mut rng = Rng::from_env_or_clock();
    let t = TempStore::new();
    let base = "localhost:5000/crash/base:v1";
    let gadget = sample("trace_open");
    let build = |tag: &str, no_cache: bool| {
        let mut c = t.cmd([
            "build".as_ref(),
            gadget.as_os_str(),
            "-t".as_ref(),
            tag.as_ref(),
        ]);
        if no_cache {
            c.arg("--no-cache");
        }
        c
    };
    let build_time = timed(build(base, false));
    let cached_build_time = timed(build("localhost:5000/crash/cached:v1", false));
    let tar = t.dir.path().join("export.tar");
    t.ok([
        "export".as_ref(),
        base.as_ref(),
        "localhost:5000/crash/cached:v1".as_ref(),
        tar.as_os_str(),
    ]);
    let import_store = TempStore::new();
    let import_time = timed(import_store.cmd(["import".as_ref(), tar.as_os_str()]));
    let tag_time = timed(t.cmd(["tag", base, "localhost:5000/crash/probe:v1"]));
    let remove_time = timed(t.cmd(["remove", "localhost:5000/crash/probe:v1"]));

    // The registry holds the base image; pulls go through a proxy that drops connections and
    // answers 500s.
    let registry = with_registry.then(Registry::start);
    let proxy = registry.as_ref().map(|r| {
        FaultProxy::start(
            r.addr(),
            FaultPlan {
                drop_percent: 10,
                error_percent: 10,
                corrupt_blobs: false,
                seed: rng.next(),
            },
        )
    });
    let mut pull_time = Duration::ZERO;
    if let (Some(r), Some(p)) = (&registry, &proxy) {
        let direct = format!("{}/crash/base:v1", r.host());
        t.ok(["tag", base, &direct]);
        t.ok(["push", &direct, "--insecure-registries", &r.host()]);
        t.ok(["remove", &direct]);
        let probe = TempStore::new();
        let via_proxy = format!("{}/crash/base:v1", p.host());
        let start = Instant::now();
        let _ = run(probe.cmd(["pull", &via_proxy, "--insecure-registries", &p.host()]));
        pull_time = start.elapsed();
    }
    eprintln!(
        "unkilled: build {build_time:?} (cached {cached_build_time:?}), tag {tag_time:?}, remove {remove_time:?}, import {import_time:?}, pull {pull_time:?}"
    );

    let mut ops = vec![Op::Build, Op::Tag, Op::Import, Op::Remove];
    if with_registry {
        ops.push(Op::Pull);
    }
    let baseline = tags(&t);
    // A safety net, not a target: under a loaded machine a round (a kill, then the checker on
    // the store) takes several seconds, and 30 kills need about 60 rounds.
    let deadline = Instant::now() + Duration::from_secs(400);
    let mut kills = 0;
    let mut rounds = 0;
    let mut per_op = std::collections::BTreeMap::<String, usize>::new();
    while kills < 32 && rounds < 150 && Instant::now() < deadline {
        // The operation with the fewest kills so far (in turn on ties): every one gets its share
        // even when its kills often come too late.
        let op = (0..ops.len())
            .map(|i| ops[(rounds + i) % ops.len()])
            .min_by_key(|op| per_op.get(&format!("{op:?}")).copied().unwrap_or(0))
            .expect("ops is not empty");
        rounds += 1;
        let mut victim = None;
        let (cmd, typical) = match op {
            Op::Build => {
                // Every third build compiles (killed within its first 2 s, while clang runs), the
                // others come from the cache (killed anywhere, storing included).
                let no_cache = rounds % 3 == 0;
                let tag = format!("localhost:5000/crash/b{rounds}:v1");
                (
                    build(&tag, no_cache),
                    if no_cache {
                        build_time.min(Duration::from_secs(2))
                    } else {
                        cached_build_time
                    },
                )
            }
            Op::Tag => (
                t.cmd(["tag", base, &format!("localhost:5000/crash/t{rounds}:v1")]),
                tag_time,
            ),
            Op::Import => (t.cmd(["import".as_ref(), tar.as_os_str()]), import_time),
            Op::Remove => {
                let tag = format!("localhost:5000/crash/r{rounds}:v1");
                t.ok(["tag", base, &tag]);
                victim = Some(tag.clone());
                (t.cmd(["remove", &tag]), remove_time)
            }
            Op::Pull => {
                let p = proxy.as_ref().expect("pull only with a registry");
                // A fresh local name each time, so every pull writes a new tag.
                let reference = format!("{}/crash/base:v1", p.host());
                let _ = run(t.cmd(["remove", &reference]));
                (
                    t.cmd(["pull", &reference, "--insecure-registries", &p.host()]),
                    pull_time.max(Duration::from_millis(50)),
                )
            }
        };
        let before = tags(&t);
        // Somewhere in the first 60% of a typical run, so that most kills land even when the
        // machine is less loaded than when the run was timed.
        let window = (typical.as_micros() as u64 * 6 / 10).max(1_000);
        let delay = Duration::from_micros(rng.below(window));
        let killed = kill_after(cmd, delay);
        if killed {
            kills += 1;
            *per_op.entry(format!("{op:?}")).or_default() += 1;
        }
        let after = tags(&t);
        let lost: Vec<&String> = before
            .difference(&after)
            .filter(|tag| victim.as_ref() != Some(*tag))
            .collect();
        assert!(
            lost.is_empty(),
            "{op:?} killed after {delay:?} lost tags {lost:?}"
        );
        t.check(&[], "amd64,arm64");
        // Keep the store at the base images: the checker's work does not grow with the rounds.
        for tag in after.difference(&baseline) {
            t.ok(["remove", tag]);
        }
    }
    eprintln!("{kills} kills in {rounds} rounds: {per_op:?}");
    assert!(kills >= 30, "only {kills} kills landed in {rounds} rounds");
    for op in &ops {
        assert!(
            per_op.get(&format!("{op:?}")).copied().unwrap_or(0) > 0,
            "no kill landed during {op:?}: {per_op:?}"
        );
    }
}

#[test]
fn sixteen_concurrent_writers_lose_nothing() {
    let t = TempStore::new();
    let base = "localhost:5000/concurrent16/base:v1";
    t.ok([
        "build".as_ref(),
        sample("trace_exec").as_os_str(),
        "-t".as_ref(),
        base.as_ref(),
    ]);
    let tar = t.dir.path().join("base.tar");
    let other = TempStore::new();
    other.ok([
        "build".as_ref(),
        sample("top_file").as_os_str(),
        "-t".as_ref(),
        "localhost:5000/concurrent16/imported:v1".as_ref(),
    ]);
    other.ok([
        "export".as_ref(),
        "localhost:5000/concurrent16/imported:v1".as_ref(),
        tar.as_os_str(),
    ]);
    for i in 0..4 {
        t.ok([
            "tag",
            base,
            &format!("localhost:5000/concurrent16/gone{i}:v1"),
        ]);
    }
    // 16 writers at once: 10 taggers, 2 importers, 4 removers.
    let mut children = Vec::new();
    for i in 0..10 {
        children.push(spawn(t.cmd([
            "tag",
            base,
            &format!("localhost:5000/concurrent16/tag{i}:v1"),
        ])));
    }
    for _ in 0..2 {
        children.push(spawn(t.cmd(["import".as_ref(), tar.as_os_str()])));
    }
    for i in 0..4 {
        children.push(spawn(
            t.cmd(["remove", &format!("localhost:5000/concurrent16/gone{i}:v1")]),
        ));
    }
    assert_eq!(children.len(), 16);
    for mut c in children {
        assert!(c.wait().expect("wait").success(), "a writer failed");
    }
    let names = tags(&t);
    for i in 0..10 {
        assert!(
            names.contains(&format!("localhost:5000/concurrent16/tag{i}:v1")),
            "tag{i} lost: {names:?}"
        );
    }
    for i in 0..4 {
        assert!(
            !names.contains(&format!("localhost:5000/concurrent16/gone{i}:v1")),
            "gone{i} still there"
        );
    }
    assert!(names.contains(base) && names.contains("localhost:5000/concurrent16/imported:v1"));
    t.check(&[], "amd64,arm64");
}
