//! A real registry for tests: Debian's `docker-registry` (distribution 2.8) started on
//! `127.0.0.1:0` with a temporary root (optionally with htpasswd auth) and killed on drop; a
//! minimal HTTP/1.1 client to look inside it directly; and a fault-injecting TCP proxy.
//!
//! Everything here talks to loopback addresses only, and every loop is bounded.

use std::collections::HashMap;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

/// The tools the registry tests need.
pub const REGISTRY_TOOLS: &[&str] = &["docker-registry", "skopeo", "htpasswd"];

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
}

/// Whether the registry tools are installed. Without them a test returns early with a loud
/// reason, except under `CI=true`, where it fails: CI never skips these tests.
pub fn require_registry_tools(test: &str) -> bool {
    let missing: Vec<&str> = REGISTRY_TOOLS
        .iter()
        .copied()
        .filter(|t| !on_path(t))
        .collect();
    if missing.is_empty() {
        return true;
    }
    let reason = format!(
        "{test}: needs {} on PATH (missing: {}); run `bash scripts/setup --deps`",
        REGISTRY_TOOLS.join(", "),
        missing.join(", ")
    );
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI=true but {reason}"
    );
    eprintln!("SKIPPED (not a pass): {reason}");
    false
}

/// A running `docker-registry`, killed on drop.
pub struct Registry {
    child: Child,
    port: u16,
    /// Holds the config, the storage root and the htpasswd file.
    pub dir: tempfile::TempDir,
    log: Arc<Mutex<String>>,
}

impl Registry {
    /// An open registry (no auth).
    pub fn start() -> Registry {
        Self::start_with(None)
    }

    /// A registry that requires basic auth for `user`/`password` (bcrypt htpasswd entry).
    pub fn with_htpasswd(user: &str, password: &str) -> Registry {
        Self::start_with(Some((user, password)))
    }

    fn start_with(auth: Option<(&str, &str)>) -> Registry {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().join("root");
        let mut config = format!(
            "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: true\nstorage:\n  \
             filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: \
             127.0.0.1:0\n  secret: ig-image-tests\n",
            root.display()
        );
        if let Some((user, password)) = auth {
            let out = Command::new("htpasswd")
                .args(["-Bbn", user, password])
                .output()
                .expect("run htpasswd");
            assert!(out.status.success(), "htpasswd failed: {out:?}");
            let file = dir.path().join("htpasswd");
            std::fs::write(&file, &out.stdout).expect("write htpasswd");
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: ig-image-tests\n    path: {}\n",
                file.display()
            ));
        }
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).expect("write registry config");
        let mut child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config_path)
            .env_remove("REGISTRY_HTTP_ADDR")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start docker-registry (run scripts/setup)");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel::<u16>();
        for stream in [
            Box::new(child.stderr.take().expect("stderr")) as Box<dyn std::io::Read + Send>,
            Box::new(child.stdout.take().expect("stdout")),
        ] {
            let log = log.clone();
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { break };
                    // Logged before the port is announced: whoever waits for the port then
                    // finds the line in the log.
                    {
                        let mut l = log.lock().expect("log lock");
                        if l.len() < 1 << 20 {
                            l.push_str(&line);
                            l.push('\n');
                        }
                    }
                    if let Some(rest) = line.split("listening on 127.0.0.1:").nth(1) {
                        let port: String = rest.chars().take_while(char::is_ascii_digit).collect();
                        if let Ok(p) = port.parse() {
                            let _ = tx.send(p);
                        }
                    }
                }
            });
        }
        let port = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(p) => p,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "docker-registry did not report its port:\n{}",
                    log.lock().expect("log lock")
                );
            }
        };
        Registry {
            child,
            port,
            dir,
            log,
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The socket address.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// What the registry logged so far.
    pub fn log(&self) -> String {
        self.log.lock().expect("log lock").clone()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP answer.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// Headers, names lowercased.
    pub headers: HashMap<String, String>,
    /// The body (chunked encoding decoded).
    pub body: Vec<u8>,
}

/// One plain-HTTP request to a loopback server (`Connection: close`).
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> std::io::Result<HttpResponse> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("Content-Length: 0\r\n\r\n");
    s.write_all(req.as_bytes())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    parse_response(&raw, method == "HEAD")
}

fn parse_response(raw: &[u8], head_only: bool) -> std::io::Result<HttpResponse> {
    let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_owned());
    let end = find(raw, b"\r\n\r\n").ok_or_else(|| bad("no header end"))?;
    let head = String::from_utf8_lossy(&raw[..end]);
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| bad("no status"))?;
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = raw[end + 4..].to_vec();
    if head_only {
        body.clear();
    } else if headers
        .get("transfer-encoding")
        .is_some_and(|t| t.eq_ignore_ascii_case("chunked"))
    {
        body = dechunk(&body).ok_or_else(|| bad("bad chunked body"))?;
    }
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = find(data, b"\r\n")?;
        let size_text = std::str::from_utf8(&data[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}

const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.docker.distribution.manifest.v2+json";

/// Looks straight into a registry (no proxy): tags of a repository and whether each tag's whole
/// graph is present. `auth` is a ready `Authorization` header value.
pub struct RegistryView {
    /// The registry.
    pub addr: SocketAddr,
    /// `Authorization` header, if the registry needs one.
    pub auth: Option<String>,
}

impl RegistryView {
    fn get(&self, method: &str, path: &str, accept: Option<&str>) -> HttpResponse {
        let mut h: Vec<(&str, &str)> = Vec::new();
        if let Some(a) = &self.auth {
            h.push(("Authorization", a));
        }
        if let Some(a) = accept {
            h.push(("Accept", a));
        }
        http(self.addr, method, path, &h).unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    /// The tags of `repo` (empty when the repository does not exist).
    pub fn tags(&self, repo: &str) -> Vec<String> {
        let r = self.get("GET", &format!("/v2/{repo}/tags/list"), None);
        if r.status == 404 {
            return Vec::new();
        }
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        let v: serde_json::Value = serde_json::from_slice(&r.body).expect("tags JSON");
        v["tags"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|t| t.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// A manifest's bytes by tag or digest, if present.
    pub fn manifest(&self, repo: &str, reference: &str) -> Option<Vec<u8>> {
        let r = self.get(
            "GET",
            &format!("/v2/{repo}/manifests/{reference}"),
            Some(MANIFEST_ACCEPT),
        );
        (r.status == 200).then_some(r.body)
    }

    /// Whether the registry has the blob.
    pub fn has_blob(&self, repo: &str, digest: &str) -> bool {
        self.get("HEAD", &format!("/v2/{repo}/blobs/{digest}"), None)
            .status
            == 200
    }

    /// Checks that every tag of `repo` points at a complete graph (every manifest fetchable,
    /// every config and layer present). Returns the problems found.
    pub fn incomplete_tags(&self, repo: &str) -> Vec<String> {
        let mut problems = Vec::new();
        for tag in self.tags(repo) {
            let mut stack = vec![(tag.clone(), true)];
            while let Some((reference, is_doc)) = stack.pop() {
                if !is_doc {
                    if !self.has_blob(repo, &reference) {
                        problems.push(format!("{repo}:{tag}: blob {reference} missing"));
                    }
                    continue;
                }
                let Some(body) = self.manifest(repo, &reference) else {
                    problems.push(format!("{repo}:{tag}: manifest {reference} missing"));
                    continue;
                };
                let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                for m in v["manifests"].as_array().into_iter().flatten() {
                    if let Some(d) = m["digest"].as_str() {
                        stack.push((d.to_owned(), true));
                    }
                }
                for b in v["layers"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .chain(v.get("config"))
                {
                    if let Some(d) = b["digest"].as_str() {
                        stack.push((d.to_owned(), false));
                    }
                }
            }
        }
        problems
    }
}

/// Standard base64 (for `auth` entries of config.json in tests).
pub fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in data.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// What the fault proxy does to requests, decided per request from a seeded sequence.
#[derive(Debug, Clone, Copy)]
pub struct FaultPlan {
    /// Percent of requests whose connection is dropped (half before forwarding, half after the
    /// registry handled it, so the answer is lost).
    pub drop_percent: u64,
    /// Percent of requests answered `500 Internal Server Error` without forwarding.
    pub error_percent: u64,
    /// Flip a byte in every blob body the registry sends (a hostile or broken path).
    pub corrupt_blobs: bool,
    /// Seed of the decision sequence.
    pub seed: u64,
}

/// Counters of what the proxy did.
#[derive(Debug, Default)]
pub struct ProxyStats {
    /// Requests seen.
    pub requests: AtomicUsize,
    /// Connections dropped.
    pub dropped: AtomicUsize,
    /// 500s sent.
    pub errors: AtomicUsize,
}

/// A loopback TCP proxy in front of a registry that injects faults. One request per client
/// connection (it answers `Connection: close`). Stops on drop; handles at most `MAX_REQUESTS`.
pub struct FaultProxy {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    accept: Option<std::thread::JoinHandle<()>>,
    /// What it did.
    pub stats: Arc<ProxyStats>,
}

const MAX_REQUESTS: usize = 20_000;

impl FaultProxy {
    /// Listens on `127.0.0.1:0` and forwards to `upstream` (which must be loopback).
    pub fn start(upstream: SocketAddr, plan: FaultPlan) -> FaultProxy {
        assert!(
            upstream.ip().is_loopback(),
            "the proxy only forwards to loopback"
        );
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr");
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(ProxyStats::default());
        let accept = {
            let stop = stop.clone();
            let stats = stats.clone();
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    let n = stats.requests.fetch_add(1, Ordering::SeqCst);
                    if n >= MAX_REQUESTS {
                        break;
                    }
                    let stats = stats.clone();
                    std::thread::spawn(move || {
                        let _ = handle(conn, upstream, plan, n as u64, &stats);
                    });
                }
            })
        };
        FaultProxy {
            addr,
            stop,
            accept: Some(accept),
            stats,
        }
    }

    /// `127.0.0.1:PORT` of the proxy.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

/// A 64-bit mix of the seed and the request number (splitmix64).
fn roll(seed: u64, n: u64) -> u64 {
    let mut z = seed.wrapping_add(n.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Reads one request (head and body) from the client.
fn read_request(conn: &mut BufReader<TcpStream>) -> std::io::Result<Option<(String, Vec<u8>)>> {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if conn.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        if line == "\r\n" || line == "\n" {
            break;
        }
        head.push_str(&line);
        if head.len() > 64 << 10 {
            return Ok(None);
        }
    }
    let lower = head.to_ascii_lowercase();
    let mut body = Vec::new();
    if let Some(len) = lower
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
    {
        body.resize(len, 0);
        conn.read_exact(&mut body)?;
    } else if lower.contains("transfer-encoding: chunked") {
        loop {
            let mut size_line = String::new();
            conn.read_line(&mut size_line)?;
            let size = usize::from_str_radix(size_line.trim().split(';').next().unwrap_or("0"), 16)
                .unwrap_or(0);
            let mut chunk = vec![0; size + 2];
            conn.read_exact(&mut chunk)?;
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
        head = head
            .lines()
            .filter(|l| !l.to_ascii_lowercase().starts_with("transfer-encoding"))
            .map(|l| format!("{l}\r\n"))
            .collect();
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    Ok(Some((head, body)))
}

fn handle(
    client: TcpStream,
    upstream: SocketAddr,
    plan: FaultPlan,
    n: u64,
    stats: &ProxyStats,
) -> std::io::Result<()> {
    client.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut reader = BufReader::new(client.try_clone()?);
    let mut client = client;
    let Some((head, body)) = read_request(&mut reader)? else {
        return Ok(());
    };
    let r = roll(plan.seed, n);
    let pick = r % 100;
    if pick < plan.drop_percent {
        stats.dropped.fetch_add(1, Ordering::SeqCst);
        if (r >> 32) & 1 == 1 {
            // Let the registry do the work, then lose the answer.
            let _ = forward(&head, &body, upstream);
        }
        let _ = client.shutdown(Shutdown::Both);
        return Ok(());
    }
    if pick < plan.drop_percent + plan.error_percent {
        stats.errors.fetch_add(1, Ordering::SeqCst);
        let body = br#"{"errors":[{"code":"UNKNOWN","message":"injected fault"}]}"#;
        let resp = format!(
            "HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        client.write_all(resp.as_bytes())?;
        client.write_all(body)?;
        let _ = client.shutdown(Shutdown::Both);
        return Ok(());
    }
    let mut resp = forward(&head, &body, upstream)?;
    let first = head.lines().next().unwrap_or("");
    if plan.corrupt_blobs && first.starts_with("GET ") && first.contains("/blobs/sha256:") {
        if let Some(end) = find(&resp, b"\r\n\r\n") {
            if resp.starts_with(b"HTTP/1.1 200") && resp.len() > end + 4 {
                let i = resp.len() - 1;
                resp[i] ^= 0x55;
            }
        }
    }
    client.write_all(&resp)?;
    let _ = client.shutdown(Shutdown::Both);
    Ok(())
}

/// Sends one request upstream with `Connection: close`; returns the whole raw answer.
fn forward(head: &str, body: &[u8], upstream: SocketAddr) -> std::io::Result<Vec<u8>> {
    let mut up = TcpStream::connect_timeout(&upstream, Duration::from_secs(5))?;
    up.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut out = String::new();
    for line in head.lines() {
        if line.to_ascii_lowercase().starts_with("connection:") {
            continue;
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.push_str("Connection: close\r\n\r\n");
    up.write_all(out.as_bytes())?;
    up.write_all(body)?;
    let mut resp = Vec::new();
    up.read_to_end(&mut resp)?;
    Ok(resp)
}

/// Writes an executable script `docker-credential-<name>` into `dir` that answers `get` for
/// `server` with `user`/`secret` and "credentials not found" otherwise.
pub fn write_credential_helper(
    dir: &Path,
    name: &str,
    server: &str,
    user: &str,
    secret: &str,
) -> PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    let path = dir.join(format!("docker-credential-{name}"));
    let script = format!(
        "#!/bin/sh\n\
         # Test credential helper: docker's protocol (action in $1, input on stdin).\n\
         read -r input || true\n\
         case \"$1\" in\n\
           get)\n\
             if [ \"$input\" = '{server}' ]; then\n\
               printf '{{\"ServerURL\":\"%s\",\"Username\":\"%s\",\"Secret\":\"%s\"}}\\n' '{server}' '{user}' '{secret}'\n\
             else\n\
               echo 'credentials not found in native keychain'; exit 1\n\
             fi ;;\n\
           *) exit 0 ;;\n\
         esac\n"
    );
    std::fs::write(&path, script).expect("write helper");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod helper");
    path
}
