//! Command-line definitions (clap derive: doc comments are the help text) and dispatch.

mod artifacthub;
mod attest;
mod build;
mod check;
mod common;
mod completions;
mod container_image;
mod doctor;
mod export;
mod generate_key_pair;
mod import;
mod init;
mod inspect;
mod kernels;
mod list;
mod login;
mod logout;
mod pull;
mod push;
mod remove;
mod run;
mod sign;
mod tag;
mod verify;
mod verify_blob;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use gadget_store::Store;

/// Build eBPF gadgets into OCI images without Docker, keep them in the store `ig` uses, and prove them.
#[derive(Debug, Parser)]
#[command(
    name = "ig-image",
    version,
    propagate_version = true,
    max_term_width = 100
)]
#[command(
    after_help = "Images built here run under upstream `ig run`: the store is the one `ig` uses.\n\
Docs: docs/quick-start.md, docs/authoring.md, docs/commands/<command>.md"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Local image store (an OCI image layout). Default: /var/lib/ig/oci-store as root, ~/.ig/oci-store otherwise
    #[arg(long, global = true, env = "IG_IMAGE_STORE", value_name = "DIR")]
    pub store: Option<PathBuf>,
    /// More logging on stderr (-v debug, -vv trace)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

impl GlobalArgs {
    /// The store path: `--store`, `IG_IMAGE_STORE`, or upstream's default.
    pub fn store_path(&self) -> PathBuf {
        self.store
            .clone()
            .unwrap_or_else(gadget_store::default_store_path)
    }

    /// Open (creating if needed) the store.
    pub fn open_store(&self) -> anyhow::Result<Store> {
        let path = self.store_path();
        Store::open(&path)
            .with_context(|| format!("cannot open the image store at `{}`", path.display()))
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build gadget directories into images (C with clang; no Docker)
    ///
    /// Each directory holds `program.bpf.c` (or the `ebpfsource` of its build.yaml), usually a
    /// `gadget.yaml`, and optionally a `build.yaml`. The eBPF source is compiled with clang once
    /// per platform, in parallel, against the bundled SDK (gadget headers, libbpf headers,
    /// vmlinux.h); the object and gadget.yaml are checked; the image is stored and tagged.
    /// Unchanged sources are not recompiled (a content-addressed cache).
    Build(build::BuildArgs),
    /// Can this host run gadgets? Kernel, BTF, privileges, mounts, runtimes, toolchain
    ///
    /// Each line is ok, warning, missing (a required item) or optional (an absent item gadgets
    /// do not need), with what was found and the fix. Nothing on the host is changed and nothing
    /// is loaded into the kernel.
    Doctor(doctor::DoctorArgs),
    /// Start a new gadget directory that builds and loads as is (source, metadata, CI)
    ///
    /// The directory comes from templates built into ig-image; it builds, passes the checks and
    /// loads with no edits. An existing path is never overwritten.
    Init(init::InitArgs),
    /// Artifact Hub package files: generate them from gadget.yaml and the image, check them
    Artifacthub(artifacthub::ArtifactHubArgs),
    /// Will a gadget load on these kernels? CO-RE relocations, attach points, types, from BTF
    ///
    /// For each kernel BTF (default: the running kernel's), the object built for that kernel's
    /// architecture is checked without loading anything. Prints kernel x {ok | what fails}.
    Check(check::CheckArgs),
    /// List the images in the store
    #[command(visible_alias = "ls")]
    List(list::ListArgs),
    /// Show what an image holds: index, manifests, metadata and the eBPF object analysed
    ///
    /// The eBPF object of each platform is analysed: programs (section, kind), maps (type,
    /// key/value sizes, max entries), params (type, default) and data sources with their fields
    /// and types.
    Inspect(inspect::InspectArgs),
    /// Give an image another name
    Tag(tag::TagArgs),
    /// Remove a tag, and delete the content no other tag reaches
    ///
    /// An image's signatures (tagged `sha256-<digest>.sig` and `sha256-<digest>` in the store, as
    /// upstream `ig` keeps them) go with its last tag; `ig-image remove sha256-<digest>.sig`
    /// removes a signature alone.
    #[command(visible_alias = "rm")]
    Remove(remove::RemoveArgs),
    /// Write images to a tar file (an OCI layout, deterministic)
    Export(export::ExportArgs),
    /// Load images from a tar file written by `export` (or any OCI layout tar)
    ///
    /// Every entry and digest is checked first (no `..`, absolute paths, links or devices; the
    /// whole graph of every tag present); nothing changes in the store unless all is valid.
    Import(import::ImportArgs),
    /// Push an image (with its signatures and referrers) to its registry
    Push(push::PushArgs),
    /// Pull an image (with its signatures and referrers) from its registry
    Pull(pull::PullArgs),
    /// Log in to a registry (docker config.json format)
    Login(login::LoginArgs),
    /// Log out of a registry
    Logout(logout::LogoutArgs),
    /// Prove an image in the real kernel (or, with --kernel, in microVMs): load, attach, print records
    Run(run::RunArgs),
    /// Sign an image in the store with a cosign key (offline)
    ///
    /// Stored where upstream `ig` looks: a legacy signature under the tag `sha256-<digest>.sig`
    /// (no repository), an `oci-1-1` or `bundle` signature as a referrer listed in the index
    /// tagged `sha256-<digest>`. `list` hides these tags; push, pull, export and import carry
    /// them.
    Sign(sign::SignArgs),
    /// Verify an image's cosign signature with public keys
    Verify(verify::VerifyArgs),
    /// Sign a predicate about an image and attach it as an attestation (offline)
    Attest(attest::AttestArgs),
    /// Verify a file against a Sigstore bundle, keyless or with a key, offline
    VerifyBlob(verify_blob::VerifyBlobArgs),
    /// Write a cosign key pair (cosign.key, cosign.pub)
    GenerateKeyPair(generate_key_pair::GenerateKeyPairArgs),
    /// Fetch, list and prune the kernels `run --kernel` boots in microVMs
    Kernels(kernels::KernelsArgs),
    /// Inside a `run --kernel` microVM: run the job file the host wrote (internal)
    #[command(hide = true)]
    MicrovmGuest {
        /// The job file
        job: PathBuf,
    },
    /// Write ig-image's own container image into the store (internal: scripts/container-image)
    #[command(hide = true)]
    ContainerImage(container_image::ContainerImageArgs),
    /// Print a shell completion script (bash, zsh, fish)
    Completions(completions::CompletionsArgs),
    /// Write man pages for ig-image and every command into a directory
    Man(completions::ManArgs),
}

/// How a command ended when it did not fail outright.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// Everything worked.
    Success,
    /// A check failed or some of several items failed (exit 1).
    Failure,
}

impl From<ExitStatus> for ExitCode {
    fn from(s: ExitStatus) -> ExitCode {
        match s {
            ExitStatus::Success => ExitCode::SUCCESS,
            ExitStatus::Failure => ExitCode::from(1),
        }
    }
}

/// Run the parsed command.
pub fn run(cli: Cli) -> anyhow::Result<ExitStatus> {
    let g = &cli.global;
    match cli.command {
        Command::Build(args) => build::exec(g, args),
        Command::Doctor(args) => doctor::exec(g, args),
        Command::Init(args) => init::exec(g, args),
        Command::Artifacthub(args) => artifacthub::exec(g, args),
        Command::Check(args) => check::exec(g, args),
        Command::List(args) => list::exec(g, args),
        Command::Inspect(args) => inspect::exec(g, args),
        Command::Tag(args) => tag::exec(g, args),
        Command::Remove(args) => remove::exec(g, args),
        Command::Export(args) => export::exec(g, args),
        Command::Import(args) => import::exec(g, args),
        Command::Push(args) => push::exec(g, args),
        Command::Pull(args) => pull::exec(g, args),
        Command::Login(args) => login::exec(g, args),
        Command::Logout(args) => logout::exec(g, args),
        Command::Run(args) => run::exec(g, args),
        Command::Sign(args) => sign::exec(g, args),
        Command::Verify(args) => verify::exec(g, args),
        Command::Attest(args) => attest::exec(g, args),
        Command::VerifyBlob(args) => verify_blob::exec(g, args),
        Command::GenerateKeyPair(args) => generate_key_pair::exec(g, args),
        Command::Kernels(args) => kernels::exec(g, args),
        Command::MicrovmGuest { job } => {
            microvm::guest::main(&job)?;
            Ok(ExitStatus::Success)
        }
        Command::ContainerImage(args) => container_image::exec(g, args),
        Command::Completions(args) => completions::exec_completions(g, args),
        Command::Man(args) => completions::exec_man(g, args),
    }
}

/// Logging to stderr; `-v` turns on debug, `RUST_LOG` overrides.
pub fn init_logging(verbose: u8) {
    let level = match verbose {
        0 => "warn",
        1 => "debug",
        _ => "trace",
    };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(level))
        // oci-client logs token-service answers (bearer tokens) at debug level.
        .filter_module("oci_client", log::LevelFilter::Info)
        .format_timestamp(None)
        .format_target(false)
        .init();
}
