//! Shared support for the end-to-end tests: temp stores, the `ig-image` binary, the image checker.
