//! ig-image: build gadget images without Docker, keep them in upstream's store, and prove them.
