//! Running an image's WASM module (gadget-image.md §9) in a sandbox: the pure-Rust `wasmi`
//! interpreter, a minimal WASI preview1 (no filesystem, no network: `fd_write` to stdout/stderr
//! goes to the log, `proc_exit`, `clock_time_get`, `random_get`, empty environment and
//! arguments; any other WASI import returns ENOSYS) and a 16 MiB memory limit.
//!
//! # Budget
//!
//! Every call into the module runs on fuel (about one unit per instruction): the start
//! function and each event callback get [`CALLBACK_FUEL`], `_initialize`, `gadgetAPIVersion`
//! and the lifecycle calls [`CALL_FUEL`]. Fuel is handed out in slices of [`SLICE_FUEL`];
//! between two slices the call checks its [`Interrupt`] (the run's stop flag, set by the first
//! SIGINT/SIGTERM, and its `--timeout` deadline), so a module stops within milliseconds
//! whatever it is doing, and the error names the call. The host functions bound what a module
//! can make the host allocate: buffers never exceed the module's memory, a log write is cut at
//! [`LOG_LIMIT`], handles at [`HANDLE_LIMIT`], names at [`NAME_LIMIT`] and the values set on
//! one event at [`MEMORY_LIMIT`] bytes.
//!
//! Of the `ig` host module, only the functions marked `in_runtime` in
//! [`gadget_facts::wasm_api::HOST_FUNCTIONS`] are implemented: logging, `getParamValue`,
//! data-source fields (get, add, read, set) with per-event callbacks, and dropping an event. A
//! module importing any other `ig` function is refused by [`WasmModule::new`] before anything
//! is loaded.
//!
//! Events reach the module as their JSON object: [`WasmModule::on_event`] runs every
//! subscribed `dataSourceCallback(cbID, ds, data)` in priority order; the callbacks read fields
//! of the decoded record and set the fields the module added, whose values are returned for the
//! output to append.
//!
//! # Subscriptions and dropping events
//!
//! `dataSourceSubscribe(ds, type, prio, cbID)` takes upstream's subscription types: `1` (data:
//! one callback per event) and `3` (packet: the same, for a single data source), plus `0`, the
//! data type of upstream's first WASM API. `2` (array) is refused: runtime-min's data sources
//! are single-event ones (tracers), whose events never come as arrays.
//!
//! Upstream's API has no call that drops a single event (its Go subscribers return
//! `ErrDiscard`, but the WASM callback returns nothing). Here a callback drops the event it is
//! given by calling `dataSourceRelease(ds, data)` on it: the event is not printed and the
//! callbacks after it do not run, as with upstream's `ErrDiscard`. Releasing any other handle
//! fails (returns 1). This is an ig-image convention: upstream `ig` would return the packet to
//! its pool while it is still being delivered, so a module meant for both should only drop
//! events under ig-image (docs/wasm.md).

mod ig;
mod wasi;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use gadget_facts::wasm_api::{self, API_VERSION, IG_MODULE, WASI_MODULE};
use serde_json::{Map, Value};
use wasmi::{
    Caller, Config, Engine, Extern, ExternType, Func, Instance, Linker, Module, Store, StoreLimits,
    StoreLimitsBuilder, TypedFunc, TypedResumableCall, ValType, WasmParams, WasmResults,
};

/// `dataSourceSubscribe` types: data (upstream's first API spelled it 0), array, packet.
const SUBSCRIBE_DATA_V0: i32 = 0;
const SUBSCRIBE_DATA: i32 = 1;
const SUBSCRIBE_ARRAY: i32 = 2;
const SUBSCRIBE_PACKET: i32 = 3;

/// Memory limit of the module.
pub const MEMORY_LIMIT: usize = 16 << 20;

/// Fuel of `_initialize`, `gadgetAPIVersion` and each lifecycle call (`gadgetInit`,
/// `gadgetStart`, `gadgetStop`, ...): about a second of interpretation.
pub const CALL_FUEL: u64 = 1_000_000_000;
/// Fuel of the start function and of each event callback.
pub const CALLBACK_FUEL: u64 = 100_000_000;
/// Fuel between two checks of the [`Interrupt`] (a few milliseconds).
pub const SLICE_FUEL: u64 = 1_000_000;
/// Most bytes of one `fd_write` that reach the log.
pub const LOG_LIMIT: usize = 64 << 10;
/// Most live handles (data sources, fields) a module may hold.
pub const HANDLE_LIMIT: usize = 1 << 14;
/// Longest data source or field name a module may pass.
pub const NAME_LIMIT: usize = 256;
/// Most subscriptions per data source.
const SUBSCRIPTION_LIMIT: usize = 64;

/// The lifecycle exports, in the order a run calls them; each is `() -> i32` (0 = success).
pub const LIFECYCLE: [&str; 5] = [
    "gadgetInit",
    "gadgetPreStart",
    "gadgetStart",
    "gadgetStop",
    "gadgetPostStop",
];

/// What stops a call into the module early, besides its fuel budget.
#[derive(Debug, Clone, Copy, Default)]
pub struct Interrupt<'a> {
    /// Set by the first SIGINT or SIGTERM.
    pub stop: Option<&'a AtomicBool>,
    /// The run's `--timeout`.
    pub deadline: Option<Instant>,
}

impl Interrupt<'_> {
    /// Why a call must stop now, if it must.
    fn reason(&self) -> Option<&'static str> {
        if self.stop.is_some_and(|s| s.load(Ordering::SeqCst)) {
            return Some("the run was asked to stop (SIGINT or SIGTERM)");
        }
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            return Some("the run's --timeout passed");
        }
        None
    }
}

/// The WASI preview1 import module.
const WASI: &str = WASI_MODULE;

/// Field kinds of the API.
const KIND_BOOL: u32 = 1;
const KIND_STRING: u32 = 12;
const KIND_CSTRING: u32 = 13;
const KIND_BYTES: u32 = 14;
const KIND_F32: u32 = 10;
const KIND_F64: u32 = 11;

/// A module that cannot run.
#[derive(Debug, thiserror::Error)]
pub enum WasmError {
    /// The module imports `ig` functions this runtime does not implement.
    #[error(
        "the WASM module imports `ig` functions this runtime does not support: {}",
        .0.join(", ")
    )]
    Unsupported(Vec<String>),
    /// Not a module, or instantiation failed.
    #[error("WASM module: {0}")]
    Module(String),
    /// A lifecycle call failed or returned non-zero.
    #[error("WASM module: `{call}` failed: {reason}")]
    Call {
        /// The export.
        call: String,
        /// Why.
        reason: String,
    },
    /// A call was stopped by a signal or the timeout.
    #[error("WASM module: `{call}` was interrupted: {reason}")]
    Interrupted {
        /// The export.
        call: String,
        /// Why.
        reason: &'static str,
    },
    /// A call used its whole fuel budget.
    #[error(
        "WASM module: `{call}` was stopped after {fuel} instructions, its whole budget (does it loop forever?)"
    )]
    Budget {
        /// The export.
        call: String,
        /// The budget.
        fuel: u64,
    },
}

#[derive(Debug, Clone)]
enum Handle {
    DataSource(usize),
    /// Data source, field name.
    Field(usize, String),
    /// The event being delivered.
    Data,
}

#[derive(Debug, Default)]
struct DataSource {
    name: String,
    /// Fields added by the module: name, kind.
    added: Vec<(String, u32)>,
    /// (priority, callback id).
    subscriptions: Vec<(i32, u64)>,
}

/// The event being delivered.
struct Event {
    /// Its data source (index).
    ds: usize,
    /// The decoded record's members.
    fields: Map<String, Value>,
    /// Values the module set.
    set: HashMap<String, Value>,
    /// A callback released (dropped) it.
    dropped: bool,
}

/// What the module made of one event.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Print it, with the fields the module added (name, value), in the order they were added
    /// (empty when the data source has none).
    Keep(Vec<(String, Value)>),
    /// A callback dropped it.
    Drop,
}

/// Host state of the module.
pub struct Host {
    limits: StoreLimits,
    data_sources: Vec<DataSource>,
    handles: HashMap<u32, Handle>,
    next_handle: u32,
    params: HashMap<String, String>,
    /// The event being delivered.
    event: Option<Event>,
    log: Box<dyn FnMut(&str)>,
}

impl Host {
    /// A new handle, or 0 (the API's error value) when the module holds too many.
    fn handle(&mut self, h: Handle) -> u32 {
        if self.handles.len() >= HANDLE_LIMIT {
            return 0;
        }
        self.handle_unlimited(h)
    }

    /// A new handle, whatever the module holds (for the runtime's own handles).
    fn handle_unlimited(&mut self, h: Handle) -> u32 {
        self.next_handle = self.next_handle.wrapping_add(1).max(1);
        while self.handles.contains_key(&self.next_handle) {
            self.next_handle = self.next_handle.wrapping_add(1).max(1);
        }
        self.handles.insert(self.next_handle, h);
        self.next_handle
    }
}

/// An instantiated module.
pub struct WasmModule<'a> {
    store: Store<Host>,
    instance: Instance,
    interrupt: Interrupt<'a>,
    /// A callback was interrupted or used its whole budget: the module is not called again.
    fault: Option<WasmError>,
}

fn memory(caller: &Caller<'_, Host>) -> Option<wasmi::Memory> {
    caller.get_export("memory").and_then(Extern::into_memory)
}

/// The bytes of the module's memory at `ptr..ptr + len` (`None` when out of bounds, so a
/// module cannot make the host allocate more than its own memory).
fn read_mem(caller: &Caller<'_, Host>, ptr: usize, len: usize) -> Option<Vec<u8>> {
    if len == 0 {
        return Some(Vec::new());
    }
    let mem = memory(caller)?;
    mem.data(caller)
        .get(ptr..ptr.checked_add(len)?)
        .map(<[u8]>::to_vec)
}

/// The buffer `s` of the API: pointer in the low 32 bits, length in the high ones.
fn read_buf(caller: &Caller<'_, Host>, s: i64) -> Option<Vec<u8>> {
    read_mem(
        caller,
        (s as u64 & 0xffff_ffff) as usize,
        (s as u64 >> 32) as usize,
    )
}

fn read_str(caller: &Caller<'_, Host>, s: i64) -> Option<String> {
    read_buf(caller, s).map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// A data source or field name (at most [`NAME_LIMIT`] bytes).
fn read_name(caller: &Caller<'_, Host>, s: i64) -> Option<String> {
    if (s as u64 >> 32) as usize > NAME_LIMIT {
        return None;
    }
    read_str(caller, s)
}

/// Writes `data` into the buffer `dst` (truncated to its length); returns the full length.
fn write_buf(caller: &mut Caller<'_, Host>, dst: i64, data: &[u8]) -> i32 {
    let (ptr, len) = (
        (dst as u64 & 0xffff_ffff) as usize,
        (dst as u64 >> 32) as usize,
    );
    let n = data.len().min(len);
    if !write_mem(caller, ptr, &data[..n]) {
        return -1;
    }
    data.len() as i32
}

/// Writes `bytes` into the module's memory at `ptr`; false when they do not fit.
fn write_mem(caller: &mut Caller<'_, Host>, ptr: usize, bytes: &[u8]) -> bool {
    memory(caller).is_some_and(|mem| mem.write(&mut *caller, ptr, bytes).is_ok())
}

fn default_value(kind: u32) -> Value {
    match kind {
        KIND_STRING | KIND_CSTRING | KIND_BYTES => Value::String(String::new()),
        KIND_BOOL => Value::Bool(false),
        _ => Value::from(0),
    }
}

/// The `ig` imports of `bytes` this runtime does not implement (also those with another
/// signature than §9's).
pub fn unsupported_imports(bytes: &[u8]) -> Result<Vec<String>, WasmError> {
    let engine = Engine::default();
    let module = Module::new(&engine, bytes).map_err(|e| WasmError::Module(e.to_string()))?;
    Ok(unsupported(&module))
}

fn unsupported(module: &Module) -> Vec<String> {
    let mut out = Vec::new();
    for import in module.imports() {
        if import.module() != IG_MODULE {
            continue;
        }
        let ok = match (wasm_api::runtime_function(import.name()), import.ty()) {
            (Some(function), wasmi::ExternType::Func(ty)) => {
                let types = |t: &[wasm_api::ValueType]| {
                    t.iter()
                        .map(|t| match t {
                            wasm_api::ValueType::I32 => ValType::I32,
                            wasm_api::ValueType::I64 => ValType::I64,
                        })
                        .collect::<Vec<_>>()
                };
                ty.params() == types(function.params) && ty.results() == types(function.results)
            }
            _ => false,
        };
        if !ok {
            out.push(import.name().to_string());
        }
    }
    out
}

/// The exports the runtime calls, with their types: a present export of another type is an
/// error (the module was built against another API).
fn check_exports(module: &Module) -> Result<(), WasmError> {
    use ValType::{I32, I64};
    let mut expected: Vec<(&str, &[ValType], &[ValType])> = vec![
        ("gadgetAPIVersion", &[], &[I64]),
        ("_initialize", &[], &[]),
        ("dataSourceCallback", &[I64, I32, I32], &[]),
    ];
    expected.extend(LIFECYCLE.iter().map(|n| (*n, &[][..], &[I32][..])));
    let mut has_version = false;
    for export in module.exports() {
        let Some((name, params, results)) = expected.iter().find(|e| e.0 == export.name()) else {
            continue;
        };
        has_version |= *name == "gadgetAPIVersion";
        let ok = match export.ty() {
            ExternType::Func(ty) => ty.params() == *params && ty.results() == *results,
            _ => false,
        };
        if !ok {
            let sig = |t: &[ValType]| {
                t.iter()
                    .map(|v| format!("{v:?}").to_lowercase())
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            return Err(WasmError::Module(format!(
                "export `{name}` must be a function ({}) -> ({})",
                sig(params),
                sig(results)
            )));
        }
    }
    if !has_version {
        return Err(WasmError::Module(
            "no export `gadgetAPIVersion() -> i64`".into(),
        ));
    }
    Ok(())
}

/// Checks a module without running any of its code: it parses and validates, imports only
/// what this runtime provides, exports what it calls with the right types, and instantiates
/// (its memory within [`MEMORY_LIMIT`]). What `run --verify-only` does with a WASM layer.
pub fn validate(bytes: &[u8]) -> Result<(), WasmError> {
    let (module, mut store, linker) = prepare(bytes, &[], HashMap::new(), Box::new(|_| {}))?;
    // Instantiating without the start function: nothing of the module runs. (wasmi deprecates
    // `instantiate` for `instantiate_and_start` with zero fuel, which would report a start
    // function as a trap; the pre-instance says what it is.)
    #[allow(deprecated)]
    linker
        .instantiate(&mut store, &module)
        .map_err(|e| WasmError::Module(e.to_string()))?;
    Ok(())
}

/// Parses, checks imports and exports, and sets up the store (with fuel metering and the
/// memory limit) and the linker.
fn prepare(
    bytes: &[u8],
    data_sources: &[String],
    params: HashMap<String, String>,
    log: Box<dyn FnMut(&str)>,
) -> Result<(Module, Store<Host>, Linker<Host>), WasmError> {
    if bytes.is_empty() {
        return Err(WasmError::Module("the module is empty (0 bytes)".into()));
    }
    let mut config = Config::default();
    config.consume_fuel(true);
    let engine = Engine::new(&config);
    let module = Module::new(&engine, bytes).map_err(|e| WasmError::Module(e.to_string()))?;
    let missing = unsupported(&module);
    if !missing.is_empty() {
        return Err(WasmError::Unsupported(missing));
    }
    check_exports(&module)?;
    let host = Host {
        limits: StoreLimitsBuilder::new().memory_size(MEMORY_LIMIT).build(),
        data_sources: data_sources
            .iter()
            .map(|n| DataSource {
                name: n.clone(),
                ..DataSource::default()
            })
            .collect(),
        handles: HashMap::new(),
        next_handle: 0,
        params,
        event: None,
        log,
    };
    let mut store = Store::new(&engine, host);
    store.limiter(|h| &mut h.limits);
    let mut linker = Linker::new(&engine);
    let err = |e: wasmi::Error| WasmError::Module(e.to_string());
    ig::define_ig(&mut linker).map_err(err)?;
    wasi::define_wasi(&mut linker, &module).map_err(err)?;
    Ok((module, store, linker))
}

/// Calls `f` on at most `fuel` units, checking `interrupt` between slices of [`SLICE_FUEL`].
fn call_bounded<P: WasmParams, R: WasmResults>(
    store: &mut Store<Host>,
    f: &TypedFunc<P, R>,
    params: P,
    call: &str,
    fuel: u64,
    interrupt: &Interrupt<'_>,
) -> Result<R, WasmError> {
    let failed = |reason: String| WasmError::Call {
        call: call.into(),
        reason,
    };
    let mut left = fuel;
    let mut slice = SLICE_FUEL.min(left);
    left -= slice;
    store.set_fuel(slice).map_err(|e| failed(e.to_string()))?;
    let mut state = f
        .call_resumable(&mut *store, params)
        .map_err(|e| failed(e.to_string()))?;
    loop {
        match state {
            TypedResumableCall::Finished(r) => return Ok(r),
            TypedResumableCall::HostTrap(t) => return Err(failed(t.host_error().to_string())),
            TypedResumableCall::OutOfFuel(t) => {
                if let Some(reason) = interrupt.reason() {
                    return Err(WasmError::Interrupted {
                        call: call.into(),
                        reason,
                    });
                }
                let need = t.required_fuel().max(1);
                if left < need {
                    return Err(WasmError::Budget {
                        call: call.into(),
                        fuel,
                    });
                }
                slice = SLICE_FUEL.max(need).min(left);
                left -= slice;
                store.set_fuel(slice).map_err(|e| failed(e.to_string()))?;
                state = t.resume(&mut *store).map_err(|e| failed(e.to_string()))?;
            }
        }
    }
}

impl<'a> WasmModule<'a> {
    /// Instantiates `bytes` (refusing unsupported `ig` imports and exports of the wrong type),
    /// runs its start function and `_initialize`, and checks `gadgetAPIVersion() == 1`.
    /// `data_sources` are the gadget's data source names; `params` the module's parameter
    /// values; `log` receives what the module writes to stdout/stderr; `interrupt` stops any
    /// call into the module early (see the module docs for the budget).
    pub fn new(
        bytes: &[u8],
        data_sources: &[String],
        params: HashMap<String, String>,
        log: Box<dyn FnMut(&str)>,
        interrupt: Interrupt<'a>,
    ) -> Result<WasmModule<'a>, WasmError> {
        let (module, mut store, linker) = prepare(bytes, data_sources, params, log)?;
        // Instantiated first, then started on a budget of its own (see `validate`).
        #[allow(deprecated)]
        let pre = linker
            .instantiate(&mut store, &module)
            .map_err(|e| WasmError::Module(e.to_string()))?;
        // The start function cannot be resumed: it gets a small budget in one piece.
        store
            .set_fuel(CALLBACK_FUEL)
            .map_err(|e| WasmError::Module(e.to_string()))?;
        let instance = pre.start(&mut store).map_err(|e| {
            if e.as_trap_code() == Some(wasmi::core::TrapCode::OutOfFuel) {
                WasmError::Budget {
                    call: "start function".into(),
                    fuel: CALLBACK_FUEL,
                }
            } else {
                WasmError::Call {
                    call: "start function".into(),
                    reason: e.to_string(),
                }
            }
        })?;
        let mut m = WasmModule {
            store,
            instance,
            interrupt,
            fault: None,
        };
        if let Ok(f) = m.instance.get_typed_func::<(), ()>(&m.store, "_initialize") {
            call_bounded(&mut m.store, &f, (), "_initialize", CALL_FUEL, &interrupt)?;
        }
        let version = m
            .instance
            .get_typed_func::<(), i64>(&m.store, "gadgetAPIVersion")
            .map_err(|_| WasmError::Module("no export `gadgetAPIVersion() -> i64`".into()))?;
        let version = call_bounded(
            &mut m.store,
            &version,
            (),
            "gadgetAPIVersion",
            CALL_FUEL,
            &interrupt,
        )?;
        if version != API_VERSION {
            return Err(WasmError::Module(format!(
                "gadgetAPIVersion() is {version}, this runtime supports {API_VERSION}"
            )));
        }
        Ok(m)
    }

    /// Replaces what interrupts later calls (e.g. a grace period for `gadgetStop` once the run
    /// was stopped).
    pub fn set_interrupt(&mut self, interrupt: Interrupt<'a>) {
        self.interrupt = interrupt;
    }

    /// Why an event callback was interrupted or stopped: once that happened the module is not
    /// called again and every later event is dropped.
    pub fn take_fault(&mut self) -> Option<WasmError> {
        self.fault.take()
    }

    /// Whether an event callback was interrupted or stopped (see [`WasmModule::take_fault`]).
    pub fn has_fault(&self) -> bool {
        self.fault.is_some()
    }

    /// Calls the lifecycle export `name` (`gadgetInit`, ...), when the module has it.
    pub fn lifecycle(&mut self, name: &str) -> Result<(), WasmError> {
        let Ok(f) = self.instance.get_typed_func::<(), i32>(&self.store, name) else {
            return Ok(());
        };
        match call_bounded(&mut self.store, &f, (), name, CALL_FUEL, &self.interrupt)? {
            0 => Ok(()),
            r => Err(WasmError::Call {
                call: name.into(),
                reason: format!("returned {r}"),
            }),
        }
    }

    /// Names of the fields the module added to data source `ds`, in the order they were added.
    pub fn added_fields(&self, ds: &str) -> Vec<String> {
        self.store
            .data()
            .data_sources
            .iter()
            .find(|d| d.name == ds)
            .map(|d| d.added.iter().map(|(n, _)| n.clone()).collect())
            .unwrap_or_default()
    }

    /// Runs the callbacks subscribed to data source `ds`, in priority order, for one event whose
    /// decoded record is the JSON object `json`. A callback that traps is logged and the
    /// event kept (with what was set so far); one that releases the event drops it and ends
    /// the delivery. A callback that is interrupted or uses its whole budget drops the event
    /// and faults the module ([`WasmModule::take_fault`]).
    pub fn on_event(&mut self, ds: &str, json: &[u8]) -> Verdict {
        if self.fault.is_some() {
            return Verdict::Drop;
        }
        let host = self.store.data();
        let Some(i) = host.data_sources.iter().position(|d| d.name == ds) else {
            return Verdict::Keep(Vec::new());
        };
        let d = &host.data_sources[i];
        if d.subscriptions.is_empty() && d.added.is_empty() {
            return Verdict::Keep(Vec::new());
        }
        let subs: Vec<u64> = d.subscriptions.iter().map(|s| s.1).collect();
        let added = d.added.clone();
        let fields: Map<String, Value> = serde_json::from_slice(json).unwrap_or_default();
        let host = self.store.data_mut();
        host.event = Some(Event {
            ds: i,
            fields,
            set: HashMap::new(),
            dropped: false,
        });
        // The event's own handles do not count against the module's limit.
        let ds_handle = host.handle_unlimited(Handle::DataSource(i));
        let data_handle = host.handle_unlimited(Handle::Data);
        if let Some(cb) = self
            .instance
            .get_func(&self.store, "dataSourceCallback")
            .and_then(|f: Func| f.typed::<(i64, i32, i32), ()>(&self.store).ok())
        {
            for id in subs {
                let params = (id as i64, ds_handle as i32, data_handle as i32);
                let call = "dataSourceCallback";
                match call_bounded(
                    &mut self.store,
                    &cb,
                    params,
                    call,
                    CALLBACK_FUEL,
                    &self.interrupt,
                ) {
                    Ok(()) => {}
                    Err(e @ (WasmError::Interrupted { .. } | WasmError::Budget { .. })) => {
                        self.fault = Some(e);
                        break;
                    }
                    Err(e) => {
                        log::error!("wasm: {e}");
                        break;
                    }
                }
                if self.store.data().event.as_ref().is_some_and(|e| e.dropped) {
                    break;
                }
            }
        }
        let host = self.store.data_mut();
        host.handles.remove(&ds_handle);
        host.handles.remove(&data_handle);
        let Some(event) = host.event.take() else {
            return Verdict::Keep(Vec::new());
        };
        if event.dropped || self.fault.is_some() {
            return Verdict::Drop;
        }
        let mut set = event.set;
        Verdict::Keep(
            added
                .into_iter()
                .map(|(name, kind)| {
                    let v = set.remove(&name).unwrap_or_else(|| default_value(kind));
                    (name, v)
                })
                .collect(),
        )
    }
}

/// Appends `fields` to the JSON object `json` (the bytes of `{...}`).
pub fn append_fields(json: &mut Vec<u8>, fields: &[(String, Value)]) {
    if fields.is_empty() || json.last() != Some(&b'}') {
        return;
    }
    json.pop();
    for (name, v) in fields {
        if json.len() > 1 {
            json.push(b',');
        }
        crate::decode::push_json_str(json, name.as_bytes());
        json.push(b':');
        json.extend_from_slice(v.to_string().as_bytes());
    }
    json.push(b'}');
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Subscribes to `open`, copies field `fname` into an added string field `copy` and the
    /// module parameter `tag` into an added string field `tag`.
    const MODULE: &str = r#"(module
  (import "ig" "getDataSource" (func $ds (param i64) (result i32)))
  (import "ig" "dataSourceGetField" (func $get (param i32 i64) (result i32)))
  (import "ig" "dataSourceAddField" (func $add (param i32 i64 i32) (result i32)))
  (import "ig" "dataSourceSubscribe" (func $sub (param i32 i32 i32 i64) (result i32)))
  (import "ig" "fieldGetBuffer" (func $getbuf (param i32 i32 i32 i64) (result i32)))
  (import "ig" "fieldSet" (func $set (param i32 i32 i32 i64) (result i32)))
  (import "ig" "getParamValue" (func $param (param i64 i64) (result i32)))
  (import "wasi_snapshot_preview1" "fd_close" (func $close (param i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "open")
  (data (i32.const 8) "fname")
  (data (i32.const 16) "copy")
  (data (i32.const 24) "tag")
  (global $fname (mut i32) (i32.const 0))
  (global $copy (mut i32) (i32.const 0))
  (global $tag (mut i32) (i32.const 0))
  (global $taglen (mut i32) (i32.const 0))
  (func (export "_initialize"))
  (func (export "gadgetAPIVersion") (result i64) i64.const 1)
  (func (export "gadgetInit") (result i32) (local $d i32)
    (local.set $d (call $ds (i64.const 0x400000000)))
    (global.set $fname (call $get (local.get $d) (i64.const 0x500000008)))
    (global.set $copy (call $add (local.get $d) (i64.const 0x400000010) (i32.const 12)))
    (global.set $tag (call $add (local.get $d) (i64.const 0x300000018) (i32.const 12)))
    (if (call $param (i64.const 0x300000018) (i64.const 0x1000000200)) (then (return (i32.const 1))))
    (global.set $taglen (i32.const 16))
    (if (i32.ne (call $close (i32.const 3)) (i32.const 52)) (then (return (i32.const 2))))
    (call $sub (local.get $d) (i32.const 0) (i32.const 0) (i64.const 7)))
  (func (export "dataSourceCallback") (param $cb i64) (param $d i32) (param $data i32) (local $n i32)
    (local.set $n (call $getbuf (global.get $fname) (local.get $data) (i32.const 12) (i64.const 0x10000000100)))
    (drop (call $set (global.get $copy) (local.get $data) (i32.const 12)
      (i64.or (i64.shl (i64.extend_i32_u (local.get $n)) (i64.const 32)) (i64.const 0x100))))
    (drop (call $set (global.get $tag) (local.get $data) (i32.const 12) (i64.const 0x200000200)))))"#;

    #[test]
    fn callback_reads_and_adds_fields() {
        let bytes = wat::parse_str(MODULE).unwrap();
        let params = HashMap::from([("tag".to_string(), "hi".to_string())]);
        let mut m = WasmModule::new(
            &bytes,
            &["open".to_string()],
            params,
            Box::new(|_| {}),
            Interrupt::default(),
        )
        .unwrap();
        m.lifecycle("gadgetInit").unwrap();
        m.lifecycle("gadgetStop").unwrap();
        let mut json = br#"{"fd":3,"fname":"/etc/passwd"}"#.to_vec();
        let Verdict::Keep(added) = m.on_event("open", &json) else {
            panic!("kept")
        };
        append_fields(&mut json, &added);
        assert_eq!(
            String::from_utf8(json).unwrap(),
            r#"{"fd":3,"fname":"/etc/passwd","copy":"/etc/passwd","tag":"hi"}"#
        );
        assert_eq!(m.added_fields("open"), ["copy", "tag"]);
        // Another data source is untouched.
        assert_eq!(m.on_event("exec", br#"{"x":1}"#), Verdict::Keep(Vec::new()));
    }

    /// Two subscriptions on `open`: callback 1 (type packet, priority 0) drops events with an
    /// odd `fd` and tries to release a handle that is not the event; callback 2 (type data,
    /// priority 10, so second) sets the added field `seen`. An array subscription is refused.
    const DROPPER: &str = r#"(module
  (import "ig" "getDataSource" (func $ds (param i64) (result i32)))
  (import "ig" "dataSourceGetField" (func $get (param i32 i64) (result i32)))
  (import "ig" "dataSourceAddField" (func $add (param i32 i64 i32) (result i32)))
  (import "ig" "dataSourceSubscribe" (func $sub (param i32 i32 i32 i64) (result i32)))
  (import "ig" "fieldGetScalar" (func $scalar (param i32 i32 i32 i32) (result i64)))
  (import "ig" "fieldSet" (func $set (param i32 i32 i32 i64) (result i32)))
  (import "ig" "dataSourceRelease" (func $release (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "open")
  (data (i32.const 8) "fd")
  (data (i32.const 16) "seen")
  (global $fd (mut i32) (i32.const 0))
  (global $seen (mut i32) (i32.const 0))
  (global $bad (mut i32) (i32.const -1))
  (func (export "gadgetAPIVersion") (result i64) i64.const 1)
  (func (export "gadgetInit") (result i32) (local $d i32)
    (local.set $d (call $ds (i64.const 0x400000000)))
    (global.set $fd (call $get (local.get $d) (i64.const 0x200000008)))
    (global.set $seen (call $add (local.get $d) (i64.const 0x400000010) (i32.const 8)))
    (if (i32.eqz (call $sub (local.get $d) (i32.const 2) (i32.const 0) (i64.const 9)))
      (then (return (i32.const 1))))
    (drop (call $sub (local.get $d) (i32.const 1) (i32.const 10) (i64.const 2)))
    (call $sub (local.get $d) (i32.const 3) (i32.const 0) (i64.const 1)))
  (func (export "dataSourceCallback") (param $cb i64) (param $d i32) (param $data i32)
    (if (i64.eq (local.get $cb) (i64.const 1))
      (then
        (global.set $bad (call $release (local.get $d) (local.get $d)))
        (if (i32.wrap_i64 (i64.and
              (call $scalar (global.get $fd) (local.get $data) (i32.const 4) (i32.const 0))
              (i64.const 1)))
          (then (drop (call $release (local.get $d) (local.get $data)))))))
    (if (i64.eq (local.get $cb) (i64.const 2))
      (then (drop (call $set (global.get $seen) (local.get $data) (i32.const 8) (i64.const 1))))))
  (func (export "bad") (result i32) (global.get $bad)))"#;

    #[test]
    fn releasing_the_event_drops_it_and_ends_delivery() {
        let bytes = wat::parse_str(DROPPER).unwrap();
        let mut m = WasmModule::new(
            &bytes,
            &["open".to_string()],
            HashMap::new(),
            Box::new(|_| {}),
            Interrupt::default(),
        )
        .unwrap();
        m.lifecycle("gadgetInit").unwrap();
        assert_eq!(m.on_event("open", br#"{"fd":3}"#), Verdict::Drop);
        assert_eq!(
            m.on_event("open", br#"{"fd":4}"#),
            Verdict::Keep(vec![("seen".to_string(), Value::from(1u64))])
        );
        assert_eq!(m.on_event("open", br#"{"fd":5}"#), Verdict::Drop);
        let bad = m
            .instance
            .get_typed_func::<(), i32>(&m.store, "bad")
            .unwrap()
            .call(&mut m.store, ())
            .unwrap();
        assert_eq!(bad, 1, "releasing a handle that is not the event fails");
    }

    #[test]
    fn unsupported_ig_imports_are_named() {
        let bytes = wat::parse_str(
            r#"(module
  (import "ig" "gadgetLog" (func (param i32 i64)))
  (import "ig" "newPerfReader" (func (param i32 i32 i32) (result i32)))
  (import "ig" "getDataSource" (func (param i32) (result i32)))
  (func (export "gadgetAPIVersion") (result i64) i64.const 1))"#,
        )
        .unwrap();
        assert_eq!(
            unsupported_imports(&bytes).unwrap(),
            ["newPerfReader", "getDataSource"]
        );
        let err = WasmModule::new(
            &bytes,
            &[],
            HashMap::new(),
            Box::new(|_| {}),
            Interrupt::default(),
        )
        .err()
        .unwrap();
        assert!(err.to_string().contains("newPerfReader, getDataSource"));
    }

    #[test]
    fn the_runtime_defines_every_function_the_table_says_it_implements() {
        let wat_types = |kw: &str, types: &[wasm_api::ValueType]| {
            types
                .iter()
                .map(|t| match t {
                    wasm_api::ValueType::I32 => format!("({kw} i32)"),
                    wasm_api::ValueType::I64 => format!("({kw} i64)"),
                })
                .collect::<String>()
        };
        let imports: String = wasm_api::HOST_FUNCTIONS
            .iter()
            .filter(|f| f.in_runtime)
            .map(|f| {
                format!(
                    "(import \"{IG_MODULE}\" \"{}\" (func {} {}))\n",
                    f.name,
                    wat_types("param", f.params),
                    wat_types("result", f.results)
                )
            })
            .collect();
        let bytes = wat::parse_str(format!(
            "(module {imports} (func (export \"gadgetAPIVersion\") (result i64) i64.const 1))"
        ))
        .unwrap();
        assert_eq!(unsupported_imports(&bytes).unwrap(), Vec::<String>::new());
        // Instantiation links every import against the functions `ig::define_ig` defines.
        let module = WasmModule::new(
            &bytes,
            &["open".into()],
            HashMap::new(),
            Box::new(|_| {}),
            Interrupt::default(),
        );
        if let Err(e) = module {
            panic!("{e}");
        }
    }

    #[test]
    fn api_version_must_be_one() {
        let bytes = wat::parse_str(
            r#"(module (func (export "gadgetAPIVersion") (result i64) i64.const 2))"#,
        )
        .unwrap();
        let err = WasmModule::new(
            &bytes,
            &[],
            HashMap::new(),
            Box::new(|_| {}),
            Interrupt::default(),
        )
        .err()
        .unwrap();
        assert!(err.to_string().contains("gadgetAPIVersion() is 2"), "{err}");
    }

    #[test]
    fn memory_is_limited_to_16_mib() {
        let bytes = wat::parse_str(r#"(module (memory (export "memory") 257))"#).unwrap();
        assert!(
            WasmModule::new(
                &bytes,
                &[],
                HashMap::new(),
                Box::new(|_| {}),
                Interrupt::default()
            )
            .is_err()
        );
    }
}

#[cfg(test)]
mod budget_tests {
    //! Hostile modules: loops in every call, oversized host buffers, broken bytes.

    use std::sync::atomic::AtomicBool;
    use std::time::{Duration, Instant};

    use super::*;

    /// A module whose export `call` loops forever (the others return at once).
    fn looping_in(call: &str) -> Vec<u8> {
        let body = |name: &str, result: &str, value: &str| {
            if name == call {
                format!("(func (export \"{name}\") {result} (loop (br 0)) unreachable)")
            } else {
                format!("(func (export \"{name}\") {result} {value})")
            }
        };
        let mut funcs = vec![
            body("_initialize", "", ""),
            body("gadgetAPIVersion", "(result i64)", "i64.const 1"),
        ];
        funcs.extend(
            LIFECYCLE
                .iter()
                .map(|n| body(n, "(result i32)", "i32.const 0")),
        );
        wat::parse_str(format!(
            "(module (memory (export \"memory\") 1) {})",
            funcs.join("\n")
        ))
        .unwrap()
    }

    fn new_module<'a>(bytes: &[u8], interrupt: Interrupt<'a>) -> Result<WasmModule<'a>, WasmError> {
        WasmModule::new(
            bytes,
            &["open".into()],
            HashMap::new(),
            Box::new(|_| {}),
            interrupt,
        )
    }

    #[test]
    fn the_stop_flag_interrupts_every_call_and_names_it() {
        static STOP: AtomicBool = AtomicBool::new(false);
        for call in ["_initialize", "gadgetInit", "gadgetStart", "gadgetStop"] {
            STOP.store(false, Ordering::SeqCst);
            let bytes = looping_in(call);
            let setter = std::thread::spawn(|| {
                std::thread::sleep(Duration::from_millis(100));
                STOP.store(true, Ordering::SeqCst);
            });
            let started = Instant::now();
            let interrupt = Interrupt {
                stop: Some(&STOP),
                deadline: None,
            };
            let err = new_module(&bytes, interrupt).and_then(|mut m| {
                for c in LIFECYCLE {
                    m.lifecycle(c)?;
                }
                Ok(())
            });
            setter.join().unwrap();
            let err = err.expect_err("interrupted");
            assert!(
                matches!(&err, WasmError::Interrupted { call: c, .. } if c == call),
                "{call}: {err}"
            );
            assert!(
                err.to_string()
                    .contains(&format!("`{call}` was interrupted"))
            );
            assert!(started.elapsed() < Duration::from_secs(1), "{call}");
        }
    }

    #[test]
    fn the_deadline_interrupts_a_loop() {
        let bytes = looping_in("gadgetInit");
        let mut m = new_module(
            &bytes,
            Interrupt {
                stop: None,
                deadline: Some(Instant::now() + Duration::from_millis(200)),
            },
        )
        .unwrap();
        let started = Instant::now();
        let err = m.lifecycle("gadgetInit").unwrap_err();
        assert!(err.to_string().contains("--timeout"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    #[test]
    fn a_looping_callback_uses_its_budget_faults_the_module_and_drops_events() {
        let bytes = wat::parse_str(
            r#"(module
  (import "ig" "getDataSource" (func $ds (param i64) (result i32)))
  (import "ig" "dataSourceSubscribe" (func $sub (param i32 i32 i32 i64) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "open")
  (func (export "gadgetAPIVersion") (result i64) i64.const 1)
  (func (export "gadgetInit") (result i32)
    (call $sub (call $ds (i64.const 0x400000000)) (i32.const 1) (i32.const 0) (i64.const 1)))
  (func (export "dataSourceCallback") (param i64 i32 i32) (loop (br 0))))"#,
        )
        .unwrap();
        let mut m = new_module(&bytes, Interrupt::default()).unwrap();
        m.lifecycle("gadgetInit").unwrap();
        assert_eq!(m.on_event("open", b"{}"), Verdict::Drop);
        assert!(m.has_fault());
        // Not called again.
        let started = Instant::now();
        assert_eq!(m.on_event("open", b"{}"), Verdict::Drop);
        assert!(started.elapsed() < Duration::from_millis(50));
        let err = m.take_fault().unwrap();
        assert!(
            matches!(err, WasmError::Budget { ref call, fuel: CALLBACK_FUEL } if call == "dataSourceCallback"),
            "{err}"
        );
    }

    #[test]
    fn a_looping_start_function_uses_its_budget() {
        let bytes = wat::parse_str(
            r#"(module (func $s (loop (br 0))) (start $s)
  (func (export "gadgetAPIVersion") (result i64) i64.const 1))"#,
        )
        .unwrap();
        let err = new_module(&bytes, Interrupt::default()).err().unwrap();
        assert!(
            err.to_string().contains("`start function` was stopped"),
            "{err}"
        );
        // Validation does not run it.
        validate(&bytes).unwrap();
    }

    #[test]
    fn host_buffers_cannot_exceed_the_modules_memory() {
        // gadgetLog, getDataSource, fd_write and random_get with lengths of up to 4 GiB.
        let bytes = wat::parse_str(
            r#"(module
  (import "ig" "gadgetLog" (func $log (param i32 i64)))
  (import "ig" "getDataSource" (func $ds (param i64) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "random_get" (func $rand (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "\00\00\00\00\ff\ff\ff\ff")
  (func (export "gadgetAPIVersion") (result i64) i64.const 1)
  (func (export "gadgetInit") (result i32) (local $i i32)
    (call $log (i32.const 2) (i64.const 0xffffffff00000000))
    (if (call $ds (i64.const 0xffffffff00000000)) (then (return (i32.const 1))))
    (if (i32.ne (call $write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 16)) (i32.const 21))
      (then (return (i32.const 2))))
    (if (i32.ne (call $rand (i32.const 0) (i32.const -1)) (i32.const 21))
      (then (return (i32.const 3))))
    ;; Handles are limited: asking for more than HANDLE_LIMIT returns 0 at the end.
    (i32.store (i32.const 32) (i32.const 0x6e65706f))
    (loop
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if 0 (i32.and (i32.ne (call $ds (i64.const 0x400000020)) (i32.const 0))
                        (i32.lt_u (local.get $i) (i32.const 100000)))))
    (if (i32.ge_u (local.get $i) (i32.const 100000)) (then (return (i32.const 4))))
    i32.const 0))"#,
        )
        .unwrap();
        let mut m = new_module(&bytes, Interrupt::default()).unwrap();
        m.lifecycle("gadgetInit").unwrap();
        assert_eq!(m.store.data().handles.len(), HANDLE_LIMIT);
    }

    #[test]
    fn broken_modules_are_refused_by_validation() {
        let good = looping_in("none");
        validate(&good).unwrap();
        let mut random = vec![0u8; 300];
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for b in random.iter_mut() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
        let cases: [(&str, &[u8]); 4] = [
            ("empty", &[]),
            ("random", &random),
            ("truncated", &good[..good.len() / 2]),
            ("magic only", &good[..8]),
        ];
        for (what, bytes) in cases {
            let err = validate(bytes)
                .err()
                .unwrap_or_else(|| panic!("{what}: accepted"));
            assert!(err.to_string().starts_with("WASM module"), "{what}: {err}");
            // Running refuses it too.
            assert!(new_module(bytes, Interrupt::default()).is_err(), "{what}");
        }
        // The magic only is a valid empty module, without gadgetAPIVersion.
        let wrong_type = wat::parse_str(
            r#"(module (func (export "gadgetAPIVersion") (result i64) i64.const 1)
  (func (export "gadgetInit")))"#,
        )
        .unwrap();
        let err = validate(&wrong_type).unwrap_err();
        assert!(
            err.to_string()
                .contains("`gadgetInit` must be a function () -> (i32)"),
            "{err}"
        );
    }
}
