//! `ig-image doctor`.

use clap::Args;
use ig_image_check::doctor::{self, DoctorOptions, Status};

use super::{ExitStatus, GlobalArgs};
use crate::outln;
use crate::output::{self, Format};

/// Arguments of `ig-image doctor`.
#[derive(Debug, Args)]
#[command(
    after_help = "Checks: kernel version (>= 5.10), /sys/kernel/btf/vmlinux, capabilities \
(CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN) and unprivileged_bpf_disabled, bpffs and tracefs mounts, \
architecture, memory and memlock, ring buffer support, kprobe support, container runtime sockets \
(containerd, Docker, CRI-O, Podman rootful and rootless), and the build toolchain (clang-NN, \
llvm-strip-NN, rustc-web + rust-web-src + bpf-linker), and microVM proving for `run --kernel` (QEMU, \
KVM or TCG, cached kernels).\n\n\
Exit status: 0 when every required check passes (kprobes, runtimes and the toolchain are \
optional, and so is microVM proving), 1 when a required one is missing. See docs/host-requirements.md.\n\n\
JSON (-o json): {\"ready\": bool, \"checks\": [{\"name\", \"status\", \"required\", \"found\", \"fix\"}]}"
)]
pub struct DoctorArgs {
    /// Output format: text, or json (one document: `ready` and `checks`)
    #[arg(short = 'o', long = "output", value_enum, default_value = "columns")]
    output: Format,
    /// Skip the build toolchain checks (hosts that only run gadgets)
    #[arg(long)]
    no_toolchain: bool,
}

pub fn exec(_global: &GlobalArgs, args: DoctorArgs) -> anyhow::Result<ExitStatus> {
    let opts = DoctorOptions {
        toolchain: !args.no_toolchain,
        ..DoctorOptions::default()
    };
    let mut report = doctor::run(&opts);
    report.checks.extend(doctor::microvm_checks());
    if args.output == Format::Columns {
        let width = report
            .checks
            .iter()
            .map(|c| c.name.len())
            .max()
            .unwrap_or(0);
        let colour = output::colour_stdout();
        for c in &report.checks {
            // An optional item that is absent is "optional", not "missing": nothing is wrong.
            let (label, paint) = match c.status {
                Status::Ok => ("ok".to_string(), output::Paint::Good),
                Status::Missing if !c.required => ("optional".to_string(), output::Paint::Warn),
                Status::Missing => (c.status.to_string(), output::Paint::Bad),
                Status::Warning => (c.status.to_string(), output::Paint::Warn),
            };
            let padded = format!("{label:<8}");
            outln!(
                "{} {:<width$}  {}",
                output::paint(&padded, paint, colour),
                c.name,
                c.found
            );
            if let Some(fix) = &c.fix {
                outln!("{:<8} {:<width$}  fix: {fix}", "", "");
            }
        }
        let missing_required: Vec<&str> = report
            .checks
            .iter()
            .filter(|c| c.required && c.status == Status::Missing)
            .map(|c| c.name.as_str())
            .collect();
        let other = report
            .checks
            .iter()
            .filter(|c| !c.required && c.status != Status::Ok)
            .count();
        if missing_required.is_empty() {
            outln!("\nready: this host can run gadgets ({other} optional item(s) not available)");
        } else {
            outln!(
                "\nnot ready: missing {} (see the fixes above)",
                missing_required.join(", ")
            );
        }
    } else {
        output::print_data(&report, args.output)?;
    }
    Ok(if report.ready {
        ExitStatus::Success
    } else {
        ExitStatus::Failure
    })
}
