//! The hints of this library's errors (and of the runtime's it passes on), for the one error
//! renderer, [`gadget_store::hint::render_error`]: the binary prints them after the chain.

use std::error::Error;

use gadget_store::hint::hints_if;

/// Every hint `error` itself carries ([`gadget_store::hint::HintLookup`]).
pub fn hints_of(error: &(dyn Error + 'static)) -> Vec<String> {
    let lookups: &[gadget_store::hint::HintLookup] = &[
        hints_if::<crate::registry::RegistryError>,
        hints_if::<crate::sign::verify::VerifyError>,
        hints_if::<crate::sign::keys::KeyError>,
        hints_if::<crate::sign::cosign::SignError>,
        hints_if::<crate::sign::policy::PolicyError>,
        hints_if::<crate::artifacthub::ArtifactHubError>,
        hints_if::<crate::btfgen::BtfgenError>,
        hints_if::<crate::scaffold::InitError>,
        hints_if::<crate::compat::CompatError>,
        hints_if::<crate::build::toolchain::ToolchainError>,
        hints_if::<crate::build::wasm::WasmError>,
        hints_if::<crate::build::c::CompileError>,
        hints_if::<crate::build::BuildError>,
        hints_if::<crate::build::rust::RustBuildError>,
        runtime_min::hints_of,
    ];
    lookups.iter().flat_map(|lookup| lookup(error)).collect()
}
