//! The `ig` host module of gadget WASM modules (gadget-image.md §9) as one typed table: every
//! function's name and signature, and whether `runtime-min` implements it. The build-time check
//! (`ig-image build`, `ig_image_build::wasm`) accepts any import of the table with its exact
//! signature; the runtime (`runtime_min::wasm`) accepts only those it implements.

/// The host module of the `ig` functions.
pub const IG_MODULE: &str = "ig";
/// The WASI import module every gadget module may use.
pub const WASI_MODULE: &str = "wasi_snapshot_preview1";
/// The API version `gadgetAPIVersion()` must return.
pub const API_VERSION: i64 = 1;

/// Value types of the `ig` API: scalars are `i32`/`i64`; strings and buffers are one
/// `i64 = (len << 32) | ptr`; handles are `i32` (0 = invalid).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueType {
    /// `i32`.
    I32,
    /// `i64`.
    I64,
}

/// One function of the `ig` host module.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostFunction {
    /// The import name.
    pub name: &'static str,
    /// Parameter types.
    pub params: &'static [ValueType],
    /// Result types.
    pub results: &'static [ValueType],
    /// Whether `runtime-min` implements it (a module importing any other is refused at run time).
    pub in_runtime: bool,
}

use ValueType::{I32, I64};

const fn f(
    name: &'static str,
    params: &'static [ValueType],
    results: &'static [ValueType],
    in_runtime: bool,
) -> HostFunction {
    HostFunction {
        name,
        params,
        results,
        in_runtime,
    }
}

/// The 41 functions of the `ig` host module (gadget-image.md §9) with their WASM signatures.
///
/// §9 gives every signature but the five `dataArray*` ones, which are written here in its
/// conventions (data-array and data handles are `i32`, an index is `i32`, every call returns an
/// `i32` status or handle), matching upstream's host module. `runtime-min` implements 12 of
/// them: logging, `getParamValue`, data-source fields (get, add, read, set) with per-event
/// callbacks, releasing a handle and dropping an event.
#[rustfmt::skip]
pub const HOST_FUNCTIONS: [HostFunction; 41] = [
    f("gadgetLog", &[I32, I64], &[], true),
    f("gadgetShouldLog", &[I32], &[I32], true),
    f("newDataSource", &[I64, I32], &[I32], false),
    f("getDataSource", &[I64], &[I32], true),
    f("dataSourceSubscribe", &[I32, I32, I32, I64], &[I32], true),
    f("dataSourceGetField", &[I32, I64], &[I32], true),
    f("dataSourceAddField", &[I32, I64, I32], &[I32], true),
    f("dataSourceNewPacketSingle", &[I32], &[I32], false),
    f("dataSourceNewPacketArray", &[I32], &[I32], false),
    f("dataSourceEmitAndRelease", &[I32, I32], &[I32], false),
    f("dataSourceRelease", &[I32, I32], &[I32], true),
    f("dataSourceUnreference", &[I32], &[I32], false),
    f("dataSourceIsReferenced", &[I32], &[I32], false),
    f("dataArrayNew", &[I32], &[I32], false),
    f("dataArrayAppend", &[I32, I32], &[I32], false),
    f("dataArrayRelease", &[I32, I32], &[I32], false),
    f("dataArrayLen", &[I32], &[I32], false),
    f("dataArrayGet", &[I32, I32], &[I32], false),
    f("fieldGetScalar", &[I32, I32, I32, I32], &[I64], true),
    f("fieldGetBuffer", &[I32, I32, I32, I64], &[I32], true),
    f("fieldSet", &[I32, I32, I32, I64], &[I32], true),
    f("fieldAddTag", &[I32, I64], &[I32], false),
    f("getParamValue", &[I64, I64], &[I32], true),
    f("setConfig", &[I64, I64, I32], &[I32], false),
    f("newMap", &[I64, I32, I32, I32, I32], &[I32], false),
    f("getMap", &[I64], &[I32], false),
    f("mapLookup", &[I32, I64, I64], &[I32], false),
    f("mapUpdate", &[I32, I64, I64, I64], &[I32], false),
    f("mapDelete", &[I32, I64], &[I32], false),
    f("mapRelease", &[I32], &[I32], false),
    f("releaseHandle", &[I32], &[I32], true),
    f("getSyscallName", &[I32, I64], &[I32], false),
    f("getSyscallID", &[I64], &[I32], false),
    f("getSyscallDeclaration", &[I64, I64], &[I32], false),
    f("newPerfReader", &[I32, I32, I32], &[I32], false),
    f("perfReaderPause", &[I32], &[I32], false),
    f("perfReaderResume", &[I32], &[I32], false),
    f("perfReaderClose", &[I32], &[I32], false),
    f("perfReaderRead", &[I32, I64], &[I32], false),
    f("kallsymsSymbolExists", &[I64], &[I32], false),
    f("shouldDiscardMntnsID", &[I64], &[I32], false),
];

/// The function of the `ig` module called `name`.
pub fn host_function(name: &str) -> Option<&'static HostFunction> {
    HOST_FUNCTIONS.iter().find(|f| f.name == name)
}

/// The function of the `ig` module called `name`, if `runtime-min` implements it.
pub fn runtime_function(name: &str) -> Option<&'static HostFunction> {
    host_function(name).filter(|f| f.in_runtime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ig_table_has_41_distinct_functions_12_in_the_runtime() {
        let mut names: Vec<&str> = HOST_FUNCTIONS.iter().map(|f| f.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), 41);
        assert_eq!(HOST_FUNCTIONS.iter().filter(|f| f.in_runtime).count(), 12);
        let log = host_function("gadgetLog").unwrap();
        assert_eq!((log.params, log.results), (&[I32, I64][..], &[][..]));
        assert!(runtime_function("fieldGetScalar").is_some());
        assert!(host_function("newMap").is_some() && runtime_function("newMap").is_none());
    }
}
