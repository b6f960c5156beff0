//! `ig-image inspect`.

use anyhow::Context as _;
use clap::Args;
use gadget_facts::platform::Platform;
use gadget_store::Reference;
use ig_image_build::inspect::{self, InspectReport};

use super::{ExitStatus, GlobalArgs};
use crate::outln;
use crate::output::{self, Format};

/// Arguments of `ig-image inspect`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
ig-image inspect trace_open:dev                      (a short summary)\n  \
ig-image inspect trace_open:dev -o jsonpretty        (everything: index, manifests, metadata, objects)\n  \
ig-image inspect trace_open:dev --extra-info ebpf.maps,oci.digest\n  \
ig-image inspect trace_open:dev --show-datasources -o json\n\n\
--extra-info keys (upstream's names; a family name such as `ebpf` means all of its keys):\n  \
oci.digest oci.created oci.manifest oci.manifestDigest oci.annotations oci.metadata oci.layers\n  \
oci.index ebpf.sections ebpf.programs ebpf.maps ebpf.variables ebpf.datasources\n  \
wasm.gadgetAPIVersion wasm.upcalls wasm.exports\n\
They describe the host's platform (else the first; --platform picks another). With -o json:\n\
one object, key -> value. --show-datasources -o json: a list of data sources with their fields.\n\
Without either, -o json prints the whole report: {reference, digest, index, platforms: [...]}.")]
pub struct InspectArgs {
    /// The image (e.g. `trace_open`, `localhost:5000/gadgets/trace_open:v1`)
    image: String,
    /// Only this platform's manifest (default: all; the host's for --extra-info)
    #[arg(long, value_name = "ARCH")]
    platform: Option<Platform>,
    /// Output format: a short summary (text), or json, jsonpretty, yaml
    #[arg(short = 'o', long = "output", value_enum, default_value = "columns")]
    output: Format,
    /// Show only these parts, comma separated (see the keys below)
    #[arg(long, value_name = "KEY[,KEY]", value_delimiter = ',')]
    extra_info: Vec<String>,
    /// Show the data sources and their fields
    #[arg(long)]
    show_datasources: bool,
}

pub fn exec(global: &GlobalArgs, args: InspectArgs) -> anyhow::Result<ExitStatus> {
    let keys = inspect::expand_extra_info(&args.extra_info).map_err(anyhow::Error::msg)?;
    let store = global.open_store()?;
    let reference = Reference::parse(&args.image)?;
    let report = inspect::inspect(&store, &reference, args.platform)
        .with_context(|| format!("cannot inspect `{}`", args.image))?;
    if args.show_datasources {
        let datasources = report
            .main_platform()
            .and_then(|p| p.ebpf.as_ref())
            .map(|e| e.datasources.clone())
            .unwrap_or_default();
        if args.output == Format::Columns {
            for ds in &datasources {
                outln!("{} ({}, {} fields)", ds.name, ds.kind, ds.fields.len());
                let rows: Vec<Vec<String>> = ds
                    .fields
                    .iter()
                    .map(|f| vec![format!("  {}", f.name), f.c_type.clone()])
                    .collect();
                output::print_table(&["  FIELD", "TYPE"], &rows)?;
            }
        } else {
            output::print_data(&datasources, args.output)?;
        }
        return Ok(ExitStatus::Success);
    }
    if !keys.is_empty() {
        let values: serde_json::Map<String, serde_json::Value> = keys
            .iter()
            .map(|k| ((*k).to_string(), report.extra_info(k)))
            .collect();
        if args.output == Format::Columns {
            for (k, v) in &values {
                let text = match v {
                    serde_json::Value::String(s) => s.clone(),
                    other => serde_json::to_string_pretty(other)?,
                };
                outln!("{k}:");
                for line in text.lines() {
                    outln!("  {line}");
                }
            }
        } else {
            output::print_data(&values, args.output)?;
        }
        return Ok(ExitStatus::Success);
    }
    if args.output == Format::Columns {
        print_summary(&report);
    } else {
        output::print_data(&report, args.output)?;
    }
    Ok(ExitStatus::Success)
}

/// The default view: what the image is, in a dozen lines.
fn print_summary(report: &InspectReport) {
    let reference =
        Reference::parse(&report.reference).map_or(report.reference.clone(), |r| r.display());
    outln!("Image:        {reference}");
    outln!("Digest:       {}", report.digest);
    let archs: Vec<&str> = report
        .platforms
        .iter()
        .map(|p| p.architecture.as_str())
        .collect();
    outln!("Platforms:    {}", archs.join(", "));
    let Some(p) = report.main_platform() else {
        return;
    };
    if let Some(created) = p
        .annotations
        .get(gadget_facts::media_types::CREATED)
        .and_then(|v| v.as_str())
    {
        outln!(
            "Created:      {created} ({})",
            output::relative_time(created)
        );
    }
    let meta = |key: &str| {
        p.metadata
            .get(key)
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
    };
    if let Some(name) = meta("name") {
        outln!("Name:         {name}");
    }
    if let Some(d) = meta("description") {
        outln!("Description:  {d}");
    }
    if let Some(e) = &p.ebpf {
        outln!("eBPF ({}):", p.architecture);
        let programs: Vec<String> = e
            .programs
            .iter()
            .map(|pr| format!("{} ({})", pr.name, pr.section))
            .collect();
        outln!("  programs:   {}", programs.join(", "));
        let maps: Vec<String> = e
            .maps
            .iter()
            .filter(|m| !m.name.starts_with('.'))
            .map(|m| format!("{} ({})", m.name, m.map_type))
            .collect();
        if !maps.is_empty() {
            outln!("  maps:       {}", maps.join(", "));
        }
        // As `--param KEY=DEFAULT`, with gadget.yaml's key for the variable.
        let params: Vec<String> = e
            .params
            .iter()
            .map(|pa| {
                let key = p.metadata["params"]["ebpf"][pa.name.as_str()]["key"]
                    .as_str()
                    .unwrap_or(&pa.name);
                format!("{key}={}", pa.default.as_deref().unwrap_or(""))
            })
            .collect();
        if !params.is_empty() {
            outln!("  params:     {}", params.join(", "));
        }
        let ds: Vec<String> = e
            .datasources
            .iter()
            .map(|d| format!("{} ({}, {} fields)", d.name, d.kind, d.fields.len()))
            .collect();
        outln!("  datasources: {}", ds.join(", "));
    }
    if let Some(w) = &p.wasm {
        outln!(
            "WASM:         {} bytes, {} upcalls",
            w.size,
            w.upcalls.len()
        );
    }
    outln!("\nMore: -o jsonpretty (everything), --extra-info KEY, --show-datasources");
}
