//! Gadget image references and the OCI image layout store shared with upstream `ig`.
