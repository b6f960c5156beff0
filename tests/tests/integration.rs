//! End-to-end tests of the `ig-image` binary: real clang builds, the real store, the independent
//! checker. One binary, one module per area.

mod agreement;
mod authoring;
mod build;
mod cli;
mod container;
mod crash;
mod docs;
mod go_wasm;
mod hardening;
mod hostile_modules;
mod kernel;
mod microvm;
mod registry;
mod rust_wasm;
mod signing;
mod store;
mod supply_chain;
mod validation;
