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
        hints_if::<crate::attest::verify::AttestationError>,
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

#[cfg(test)]
mod tests {
    use gadget_store::hint::render_error;

    use super::*;
    use crate::build::BuildError;
    use crate::build::toolchain::ToolchainError;
    use crate::registry::RegistryError;

    #[test]
    fn a_hint_prints_after_the_chain_as_its_message_line_did() {
        let e = RegistryError::Tls {
            registry: "r:5000".into(),
            detail: "bad record".into(),
        };
        assert_eq!(
            render_error(&e, hints_of, "error"),
            "error: TLS with r:5000 failed: bad record\n\
             hint: if r:5000 serves plain HTTP, pass `--insecure-registries r:5000` (loopback \
             registries are not downgraded automatically)"
        );
    }

    #[test]
    fn transparent_wrappers_pass_their_inner_hints_on() {
        let e = BuildError::Toolchain(ToolchainError::NotFound {
            tool: "clang",
            var: "CLANG",
            package: "clang-19",
        });
        let error = anyhow::Error::new(e);
        let text = render_error(error.as_ref(), hints_of, "error");
        assert!(
            text.ends_with(
                "\nhint: install it with `apt-get install clang-19`, or set `CLANG` to the binary"
            ),
            "{text}"
        );
        assert_eq!(text.matches("hint:").count(), 1, "{text}");
    }
}
