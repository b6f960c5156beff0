//! BTF type kinds (`BTF_KIND_*`, `include/uapi/linux/btf.h`) and CO-RE relocation kinds
//! (`enum bpf_core_relo_kind`, libbpf's `relo_core.h`): the numbers the BTF readers
//! (`gadget_object::btf`, `runtime_min::btf_raw`), the build-time CO-RE check
//! (`ig_image_check::compat`) and the runtime's relocation explanations share.

/// BTF kinds (`BTF_KIND_*`).
pub mod kind {
    /// Integer.
    pub const INT: u32 = 1;
    /// Pointer.
    pub const PTR: u32 = 2;
    /// Array.
    pub const ARRAY: u32 = 3;
    /// Struct.
    pub const STRUCT: u32 = 4;
    /// Union.
    pub const UNION: u32 = 5;
    /// Enum (32-bit values).
    pub const ENUM: u32 = 6;
    /// Forward declaration.
    pub const FWD: u32 = 7;
    /// Typedef.
    pub const TYPEDEF: u32 = 8;
    /// `volatile`.
    pub const VOLATILE: u32 = 9;
    /// `const`.
    pub const CONST: u32 = 10;
    /// `restrict`.
    pub const RESTRICT: u32 = 11;
    /// Function.
    pub const FUNC: u32 = 12;
    /// Function prototype.
    pub const FUNC_PROTO: u32 = 13;
    /// Variable.
    pub const VAR: u32 = 14;
    /// Data section.
    pub const DATASEC: u32 = 15;
    /// Float.
    pub const FLOAT: u32 = 16;
    /// Declaration tag.
    pub const DECL_TAG: u32 = 17;
    /// Type tag.
    pub const TYPE_TAG: u32 = 18;
    /// Enum (64-bit values).
    pub const ENUM64: u32 = 19;
}

/// CO-RE relocation kinds (`enum bpf_core_relo_kind`), with libbpf's short names and names in
/// words.
pub mod relo {
    /// `BPF_CORE_FIELD_BYTE_OFFSET`.
    pub const FIELD_BYTE_OFFSET: u32 = 0;
    /// `BPF_CORE_FIELD_BYTE_SIZE`.
    pub const FIELD_BYTE_SIZE: u32 = 1;
    /// `BPF_CORE_FIELD_EXISTS`.
    pub const FIELD_EXISTS: u32 = 2;
    /// `BPF_CORE_FIELD_SIGNED`.
    pub const FIELD_SIGNED: u32 = 3;
    /// `BPF_CORE_FIELD_LSHIFT_U64`.
    pub const FIELD_LSHIFT_U64: u32 = 4;
    /// `BPF_CORE_FIELD_RSHIFT_U64`.
    pub const FIELD_RSHIFT_U64: u32 = 5;
    /// `BPF_CORE_TYPE_ID_LOCAL`.
    pub const TYPE_ID_LOCAL: u32 = 6;
    /// `BPF_CORE_TYPE_ID_TARGET`.
    pub const TYPE_ID_TARGET: u32 = 7;
    /// `BPF_CORE_TYPE_EXISTS`.
    pub const TYPE_EXISTS: u32 = 8;
    /// `BPF_CORE_TYPE_SIZE`.
    pub const TYPE_SIZE: u32 = 9;
    /// `BPF_CORE_ENUMVAL_EXISTS`.
    pub const ENUMVAL_EXISTS: u32 = 10;
    /// `BPF_CORE_ENUMVAL_VALUE`.
    pub const ENUMVAL_VALUE: u32 = 11;
    /// `BPF_CORE_TYPE_MATCHES`.
    pub const TYPE_MATCHES: u32 = 12;

    /// Every kind: its number, libbpf's name (`relo_core.c`, as in its logs) and its name in
    /// words (for error messages).
    const KINDS: [(u32, &str, &str); 13] = [
        (FIELD_BYTE_OFFSET, "byte_off", "field offset"),
        (FIELD_BYTE_SIZE, "byte_sz", "field size"),
        (FIELD_EXISTS, "field_exists", "field exists"),
        (FIELD_SIGNED, "signed", "field signedness"),
        (FIELD_LSHIFT_U64, "lshift_u64", "field lshift"),
        (FIELD_RSHIFT_U64, "rshift_u64", "field rshift"),
        (TYPE_ID_LOCAL, "local_type_id", "local type id"),
        (TYPE_ID_TARGET, "target_type_id", "target type id"),
        (TYPE_EXISTS, "type_exists", "type exists"),
        (TYPE_SIZE, "type_size", "type size"),
        (ENUMVAL_EXISTS, "enumval_exists", "enum value exists"),
        (ENUMVAL_VALUE, "enumval_value", "enum value"),
        (TYPE_MATCHES, "type_matches", "type matches"),
    ];

    /// libbpf's name of a relocation kind (`byte_off`), `unknown` for any other number.
    pub fn libbpf_name(kind: u32) -> &'static str {
        KINDS
            .iter()
            .find(|k| k.0 == kind)
            .map_or("unknown", |k| k.1)
    }

    /// A relocation kind in words (`field offset`), `unknown` for any other number.
    pub fn description(kind: u32) -> &'static str {
        KINDS
            .iter()
            .find(|k| k.0 == kind)
            .map_or("unknown", |k| k.2)
    }

    /// Whether the relocation is about a field (its offset, size, existence, sign or shifts).
    pub fn is_field(kind: u32) -> bool {
        kind <= FIELD_RSHIFT_U64
    }

    /// Whether the relocation is about an enumerator (its existence or value).
    pub fn is_enumval(kind: u32) -> bool {
        matches!(kind, ENUMVAL_EXISTS | ENUMVAL_VALUE)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn every_kind_has_both_names_in_order() {
            for (i, k) in KINDS.iter().enumerate() {
                assert_eq!(k.0, i as u32);
            }
            assert_eq!(libbpf_name(FIELD_BYTE_OFFSET), "byte_off");
            assert_eq!(description(ENUMVAL_VALUE), "enum value");
            assert_eq!(libbpf_name(13), "unknown");
            assert_eq!(description(99), "unknown");
            assert!(is_field(FIELD_RSHIFT_U64) && !is_field(TYPE_ID_LOCAL));
            assert!(is_enumval(ENUMVAL_EXISTS) && !is_enumval(TYPE_MATCHES));
        }
    }
}
