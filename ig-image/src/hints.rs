//! The hints of this library's errors (and of the runtime's it passes on), for the one error
//! renderer, [`gadget_store::hint::render_error`]: the binary prints them after the chain.

use std::error::Error;

use gadget_store::hint::hints_if;

/// Every hint `error` itself carries ([`gadget_store::hint::HintLookup`]).
pub fn hints_of(error: &(dyn Error + 'static)) -> Vec<String> {
    let lookups: &[gadget_store::hint::HintLookup] = &[
        hints_if::<ig_image_registry::RegistryError>,
        hints_if::<ig_image_sign::verify::VerifyError>,
        hints_if::<ig_image_sign::keys::KeyError>,
        hints_if::<ig_image_sign::cosign::SignError>,
        hints_if::<ig_image_sign::policy::PolicyError>,
        hints_if::<ig_image_sign::attestation::AttestationError>,
        hints_if::<ig_image_build::artifacthub::ArtifactHubError>,
        hints_if::<ig_image_build::btfgen::BtfgenError>,
        hints_if::<ig_image_build::scaffold::InitError>,
        hints_if::<ig_image_check::compat::CompatError>,
        hints_if::<ig_image_build::toolchain::ToolchainError>,
        hints_if::<ig_image_build::wasm::WasmError>,
        hints_if::<ig_image_build::c::CompileError>,
        hints_if::<ig_image_build::BuildError>,
        hints_if::<ig_image_build::rust::RustBuildError>,
        runtime_min::hints_of,
    ];
    lookups.iter().flat_map(|lookup| lookup(error)).collect()
}

#[cfg(test)]
mod tests {
    use gadget_store::hint::render_error;

    use super::*;
    use ig_image_build::BuildError;
    use ig_image_build::toolchain::ToolchainError;
    use ig_image_registry::RegistryError;

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
