//! The procedural half of `gadget-sdk`: it builds the marker identifiers
//! (`gadget_tracer_<name>___<map>___<struct>` and friends) that `macro_rules!` cannot paste
//! together. Use the `gadget_sdk::gadget_*!` macros, not these.
//!
//! The identifier matters, not only the symbol name: BTF `VAR` names come from the debug info's
//! name of the static, which is its Rust identifier (an `export_name` would not change it).
//! No dependencies (no syn/quote), so it builds wherever rustc does.

use proc_macro::{Delimiter, Group, TokenStream, TokenTree};

/// `marker!("prefix", a, b, c)` declares the unused global
/// `static mut <prefix>a___b___c: *const c_void`.
#[proc_macro]
pub fn marker(input: TokenStream) -> TokenStream {
    match parse(input, false) {
        Ok((name, _)) => declare(&name, "::core::ffi::c_void"),
        Err(message) => error(&message),
    }
}

/// `typed_marker!("prefix", a; Type)` declares the unused global
/// `static mut <prefix>a: *const Type`: it forces `Type` into BTF.
#[proc_macro]
pub fn typed_marker(input: TokenStream) -> TokenStream {
    match parse(input, true) {
        Ok((name, Some(ty))) => declare(&name, &ty),
        Ok((_, None)) => error("typed_marker!: expected `; Type` after the name parts"),
        Err(message) => error(&message),
    }
}

/// `tracer_map!(name, size)` declares the ring buffer `name` (aya-ebpf's BTF `RingBuf<(), size>`),
/// the marker `gadget_map_tracer_<name>` and the per-CPU array `<name>_lost_samples`.
#[proc_macro]
pub fn tracer_map(input: TokenStream) -> TokenStream {
    let mut tokens = flatten(input).into_iter();
    let name = match tokens.next() {
        Some(TokenTree::Ident(id)) => id.to_string(),
        other => {
            return error(&format!(
                "tracer_map!: expected the map name, found {other:?}"
            ));
        }
    };
    match tokens.next() {
        Some(TokenTree::Punct(p)) if p.as_char() == ',' => {}
        _ => return error("tracer_map!: expected `, size` after the map name"),
    }
    let size = tokens.collect::<TokenStream>().to_string();
    if size.trim().is_empty() {
        return error("tracer_map!: expected the ring buffer size in bytes");
    }
    let mut out: TokenStream = format!(
        "#[::aya_ebpf::macros::btf_map]
         #[allow(non_upper_case_globals)]
         static {name}: ::aya_ebpf::btf_maps::RingBuf<(), {{ {size} }}> =
             ::aya_ebpf::btf_maps::RingBuf::new();
         #[::aya_ebpf::macros::btf_map]
         #[allow(non_upper_case_globals)]
         static {name}_lost_samples: ::aya_ebpf::btf_maps::PerCpuArray<u64, 1> =
             ::aya_ebpf::btf_maps::PerCpuArray::new();"
    )
    .parse()
    .unwrap_or_else(|e| error(&format!("cannot declare ring buffer `{name}`: {e}")));
    out.extend(declare(
        &format!("gadget_map_tracer_{name}"),
        "::core::ffi::c_void",
    ));
    out
}

/// Parse `"prefix", ident (, ident)* [; type tokens]` into the joined name and the type text.
fn parse(input: TokenStream, typed: bool) -> Result<(String, Option<String>), String> {
    let mut tokens = flatten(input).into_iter().peekable();
    let prefix = match tokens.next() {
        Some(TokenTree::Literal(lit)) => {
            let text = lit.to_string();
            text.strip_prefix('"')
                .and_then(|t| t.strip_suffix('"'))
                .ok_or_else(|| format!("expected a string literal prefix, found `{text}`"))?
                .to_string()
        }
        other => return Err(format!("expected a string literal prefix, found {other:?}")),
    };
    let mut parts: Vec<String> = Vec::new();
    let mut ty = None;
    let mut expect_ident = false;
    while let Some(token) = tokens.next() {
        match token {
            TokenTree::Punct(p) if p.as_char() == ',' && !expect_ident => expect_ident = true,
            TokenTree::Punct(p) if p.as_char() == ';' && typed && !expect_ident => {
                let rest: TokenStream = tokens.by_ref().collect();
                ty = Some(rest.to_string());
                break;
            }
            TokenTree::Ident(id) if expect_ident => {
                parts.push(id.to_string().trim_start_matches("r#").to_string());
                expect_ident = false;
            }
            other => return Err(format!("unexpected `{other}` in the marker name parts")),
        }
    }
    if parts.is_empty() || expect_ident {
        return Err("expected one or more identifiers after the prefix".to_string());
    }
    if let Some(bad) = parts.iter().find(|p| p.contains("___")) {
        return Err(format!(
            "`{bad}` contains `___`, the separator of marker names: rename it"
        ));
    }
    if ty.as_deref().is_some_and(|t| t.trim().is_empty()) {
        return Err("expected a type after `;`".to_string());
    }
    Ok((format!("{prefix}{}", parts.join("___")), ty))
}

/// `macro_rules!` wraps `$ident` fragments in invisible groups: unwrap them.
fn flatten(input: TokenStream) -> Vec<TokenTree> {
    let mut out = Vec::new();
    for token in input {
        match token {
            TokenTree::Group(g) if g.delimiter() == Delimiter::None => {
                out.extend(flatten(g.stream()))
            }
            other => out.push(other),
        }
    }
    out
}

fn declare(name: &str, pointee: &str) -> TokenStream {
    format!(
        "#[unsafe(no_mangle)]
         #[used]
         #[allow(non_upper_case_globals, non_snake_case)]
         static mut {name}: *const {pointee} = ::core::ptr::null();"
    )
    .parse()
    .unwrap_or_else(|e| error(&format!("cannot declare `{name}`: {e}")))
}

fn error(message: &str) -> TokenStream {
    let text = format!("{message:?}");
    let mut out: TokenStream = "::core::compile_error!".parse().expect("valid tokens");
    out.extend([TokenTree::Group(Group::new(
        Delimiter::Parenthesis,
        text.parse().expect("a string literal"),
    ))]);
    out.extend(";".parse::<TokenStream>().expect("valid tokens"));
    out
}
