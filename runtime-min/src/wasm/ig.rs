//! The `ig` host module: the functions of gadget-image.md §9 this runtime implements, one host
//! function each, registered on the linker by concern (logging, parameters, data sources,
//! fields, handles).

use serde_json::Value;
use wasmi::{Caller, Linker};

use super::{
    Event, Handle, Host, KIND_BOOL, KIND_BYTES, KIND_CSTRING, KIND_F32, KIND_F64, KIND_STRING,
    MEMORY_LIMIT, NAME_LIMIT, SUBSCRIBE_ARRAY, SUBSCRIBE_DATA, SUBSCRIBE_DATA_V0, SUBSCRIBE_PACKET,
    SUBSCRIPTION_LIMIT, read_name, read_str, write_buf, write_mem,
};

/// Defines every `ig` function this runtime implements.
pub(super) fn define_ig(linker: &mut Linker<Host>) -> Result<(), wasmi::Error> {
    define_logging(linker)?;
    define_params(linker)?;
    define_data_sources(linker)?;
    define_fields(linker)?;
    define_handles(linker)
}

fn define_logging(linker: &mut Linker<Host>) -> Result<(), wasmi::Error> {
    linker.func_wrap("ig", "gadgetLog", gadget_log)?;
    linker.func_wrap("ig", "gadgetShouldLog", |level: i32| -> i32 {
        log::log_enabled!(log_level(level)) as i32
    })?;
    Ok(())
}

fn define_params(linker: &mut Linker<Host>) -> Result<(), wasmi::Error> {
    linker.func_wrap("ig", "getParamValue", get_param_value)?;
    Ok(())
}

fn define_data_sources(linker: &mut Linker<Host>) -> Result<(), wasmi::Error> {
    linker.func_wrap("ig", "getDataSource", get_data_source)?;
    linker.func_wrap("ig", "dataSourceSubscribe", data_source_subscribe)?;
    linker.func_wrap("ig", "dataSourceRelease", data_source_release)?;
    Ok(())
}

fn define_fields(linker: &mut Linker<Host>) -> Result<(), wasmi::Error> {
    linker.func_wrap("ig", "dataSourceGetField", data_source_get_field)?;
    linker.func_wrap("ig", "dataSourceAddField", data_source_add_field)?;
    linker.func_wrap("ig", "fieldGetScalar", field_get_scalar)?;
    linker.func_wrap("ig", "fieldGetBuffer", field_get_buffer)?;
    linker.func_wrap("ig", "fieldSet", field_set)?;
    Ok(())
}

fn define_handles(linker: &mut Linker<Host>) -> Result<(), wasmi::Error> {
    linker.func_wrap(
        "ig",
        "releaseHandle",
        |mut caller: Caller<'_, Host>, h: i32| -> i32 {
            match caller.data_mut().handles.remove(&(h as u32)) {
                Some(_) => 0,
                None => 1,
            }
        },
    )?;
    Ok(())
}

/// The API's log levels: 0 error, 1 warn, 2 info, 3 debug, anything else trace.
fn log_level(level: i32) -> log::Level {
    match level {
        0 => log::Level::Error,
        1 => log::Level::Warn,
        2 => log::Level::Info,
        3 => log::Level::Debug,
        _ => log::Level::Trace,
    }
}

fn gadget_log(caller: Caller<'_, Host>, level: i32, msg: i64) {
    let text = read_str(&caller, msg).unwrap_or_default();
    log::log!(log_level(level), "wasm: {text}");
}

fn get_param_value(mut caller: Caller<'_, Host>, key: i64, dst: i64) -> i32 {
    let Some(key) = read_str(&caller, key) else {
        return 1;
    };
    let Some(v) = caller.data().params.get(&key).cloned() else {
        return 1;
    };
    let cap = (dst as u64 >> 32) as usize;
    if v.len() > cap {
        return 1;
    }
    if write_buf(&mut caller, dst, v.as_bytes()) < 0 {
        return 1;
    }
    0
}

fn get_data_source(mut caller: Caller<'_, Host>, name: i64) -> i32 {
    let Some(name) = read_name(&caller, name) else {
        return 0;
    };
    let host = caller.data_mut();
    match host.data_sources.iter().position(|d| d.name == name) {
        Some(i) => host.handle(Handle::DataSource(i)) as i32,
        None => 0,
    }
}

fn data_source_subscribe(
    mut caller: Caller<'_, Host>,
    ds: i32,
    ty: i32,
    prio: i32,
    cb: i64,
) -> i32 {
    let host = caller.data_mut();
    let Some(i) = host.data_source_of(ds) else {
        return 1;
    };
    match ty {
        SUBSCRIBE_DATA | SUBSCRIBE_PACKET | SUBSCRIBE_DATA_V0 => {}
        SUBSCRIBE_ARRAY => {
            log::warn!(
                "wasm: dataSourceSubscribe: `{}` is a single-event data source; array subscriptions (type 2) are not supported",
                host.data_sources[i].name
            );
            return 1;
        }
        other => {
            log::warn!("wasm: dataSourceSubscribe: unknown subscription type {other}");
            return 1;
        }
    }
    let subs = &mut host.data_sources[i].subscriptions;
    if subs.len() >= SUBSCRIPTION_LIMIT {
        return 1;
    }
    subs.push((prio, cb as u64));
    subs.sort_by_key(|s| s.0);
    0
}

/// Drops the event being delivered (see the module docs of `wasm`).
fn data_source_release(mut caller: Caller<'_, Host>, ds: i32, packet: i32) -> i32 {
    let host = caller.data_mut();
    let Some(ds) = host.data_source_of(ds) else {
        return 1;
    };
    match host.event_of(ds, packet) {
        Some(e) => {
            e.dropped = true;
            0
        }
        None => 1,
    }
}

fn data_source_get_field(mut caller: Caller<'_, Host>, ds: i32, name: i64) -> i32 {
    let Some(name) = read_name(&caller, name) else {
        return 0;
    };
    let host = caller.data_mut();
    let Some(i) = host.data_source_of(ds) else {
        return 0;
    };
    host.handle(Handle::Field(i, name)) as i32
}

fn data_source_add_field(mut caller: Caller<'_, Host>, ds: i32, name: i64, kind: i32) -> i32 {
    let Some(name) = read_name(&caller, name) else {
        return 0;
    };
    let host = caller.data_mut();
    let Some(i) = host.data_source_of(ds) else {
        return 0;
    };
    let d = &mut host.data_sources[i];
    if name.is_empty() || d.added.len() >= NAME_LIMIT || d.added.iter().any(|(n, _)| *n == name) {
        return 0;
    }
    d.added.push((name.clone(), kind as u32));
    host.handle(Handle::Field(i, name)) as i32
}

fn field_get_scalar(
    mut caller: Caller<'_, Host>,
    field: i32,
    data: i32,
    kind: i32,
    err: i32,
) -> i64 {
    let v = field_value(caller.data(), field, data).and_then(|v| scalar_bits(&v, kind as u32));
    if err != 0 {
        let flag = [u8::from(v.is_none()), 0, 0, 0];
        write_mem(&mut caller, err as u32 as usize, &flag);
    }
    v.unwrap_or(0) as i64
}

fn field_get_buffer(
    mut caller: Caller<'_, Host>,
    field: i32,
    data: i32,
    _kind: i32,
    dst: i64,
) -> i32 {
    let bytes = match field_value(caller.data(), field, data) {
        Some(Value::String(s)) => s.into_bytes(),
        Some(Value::Null) | None => return -1,
        Some(v) => v.to_string().into_bytes(),
    };
    write_buf(&mut caller, dst, &bytes)
}

fn field_set(mut caller: Caller<'_, Host>, field: i32, data: i32, kind: i32, value: i64) -> i32 {
    let Some(v) = value_to_set(&caller, kind as u32, value) else {
        return 1;
    };
    let host = caller.data_mut();
    let Some((ds, name)) = host.field_of(field) else {
        return 1;
    };
    let Some(e) = host.event_of(ds, data) else {
        return 1;
    };
    let size = |v: &Value| match v {
        Value::String(s) => s.len(),
        _ => 8,
    };
    let held: usize = e.set.values().map(size).sum();
    if held + size(&v) > MEMORY_LIMIT {
        return 1;
    }
    e.set.insert(name, v);
    0
}

/// The value `fieldSet` was given, as the JSON the output prints (`None` when a string cannot
/// be read).
fn value_to_set(caller: &Caller<'_, Host>, kind: u32, value: i64) -> Option<Value> {
    Some(match kind {
        KIND_STRING | KIND_CSTRING | KIND_BYTES => Value::String(read_str(caller, value)?),
        KIND_BOOL => Value::Bool(value != 0),
        KIND_F32 => Value::from(f32::from_bits(value as u32) as f64),
        KIND_F64 => Value::from(f64::from_bits(value as u64)),
        // Signed kinds: int8..int64.
        2..=5 => Value::from(value),
        _ => Value::from(value as u64),
    })
}

/// A field's value in the event: a member of the decoded record or one the module set.
fn field_value(host: &Host, field: i32, data: i32) -> Option<Value> {
    let (ds, name) = host.field_of(field)?;
    if !host.is_event(data) {
        return None;
    }
    let e = host.event.as_ref()?;
    if e.ds != ds {
        return None;
    }
    e.set.get(&name).or_else(|| e.fields.get(&name)).cloned()
}

fn scalar_bits(v: &Value, kind: u32) -> Option<u64> {
    match v {
        Value::Bool(b) => Some(*b as u64),
        Value::Number(n) => match kind {
            KIND_F32 => n.as_f64().map(|f| (f as f32).to_bits() as u64),
            KIND_F64 => n.as_f64().map(f64::to_bits),
            _ => n
                .as_u64()
                .or_else(|| n.as_i64().map(|i| i as u64))
                .or_else(|| n.as_f64().map(|f| f as i64 as u64)),
        },
        Value::String(s) => s.parse::<u64>().ok(),
        _ => None,
    }
}

impl Host {
    /// The data source (index) that handle `ds` stands for.
    fn data_source_of(&self, ds: i32) -> Option<usize> {
        match self.handles.get(&(ds as u32)) {
            Some(Handle::DataSource(i)) => Some(*i),
            _ => None,
        }
    }

    /// The data source (index) and name of the field that handle `field` stands for.
    fn field_of(&self, field: i32) -> Option<(usize, String)> {
        match self.handles.get(&(field as u32)) {
            Some(Handle::Field(ds, name)) => Some((*ds, name.clone())),
            _ => None,
        }
    }

    /// Whether handle `data` stands for the event being delivered.
    fn is_event(&self, data: i32) -> bool {
        matches!(self.handles.get(&(data as u32)), Some(Handle::Data))
    }

    /// The event being delivered, when `data` is its handle and it comes from data source `ds`.
    fn event_of(&mut self, ds: usize, data: i32) -> Option<&mut Event> {
        if !self.is_event(data) {
            return None;
        }
        self.event.as_mut().filter(|e| e.ds == ds)
    }
}
