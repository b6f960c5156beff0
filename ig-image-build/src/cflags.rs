//! The `cflags` allow-list of build.yaml: only flags that cannot load code into the compiler,
//! read or write files outside the gadget directory, or change what the build produces.
//!
//! Accepted (one compiler argument per list item):
//! - `-DNAME[=VALUE]`, `-UNAME`;
//! - `-IDIR` with DIR inside the gadget directory (after symlinks);
//! - `-W…` warnings, except `-Wl,`, `-Wp,` and `-Wa,` (which pass options to other tools);
//! - `-f…` / `-fno-…` for the names in [`F_FLAGS`] (codegen and diagnostics), and
//!   `-fmacro-backtrace-limit=N`, `-ferror-limit=N`, `-ftemplate-backtrace-limit=N`,
//!   `-fdiagnostics-color=WHEN`;
//! - `-std=STD`, `-g…` (not `-gsplit-dwarf`), `-O0`..`-O3`, `-Os`, `-Oz`, `-Og`, `-m…` (not `-mllvm`).
//!
//! Everything else is refused with the item named: plugins (`-fplugin=`, `-fpass-plugin=`),
//! `-Xclang`/`-mllvm`/`-load`, response files (`@file`), output, mode and dependency-file flags
//! (`-o`, `-c`, `-M…`), `-ftime-trace=`, other include forms (`-isystem`, `-include`), `--…`.

use std::path::Path;

use super::confine::GadgetRoot;

/// `-f` names accepted, each also as `-fno-NAME`.
pub const F_FLAGS: &[&str] = &[
    "asynchronous-unwind-tables",
    "builtin",
    "caret-diagnostics",
    "color-diagnostics",
    "common",
    "data-sections",
    "delete-null-pointer-checks",
    "diagnostics-color",
    "diagnostics-show-option",
    "fast-math",
    "function-sections",
    "gnu89-inline",
    "inline",
    "inline-functions",
    "jump-tables",
    "math-errno",
    "merge-all-constants",
    "ms-extensions",
    "omit-frame-pointer",
    "short-enums",
    "show-column",
    "signed-char",
    "stack-protector",
    "strict-aliasing",
    "strict-overflow",
    "trapv",
    "unroll-loops",
    "unsigned-char",
    "unwind-tables",
    "vectorize",
    "slp-vectorize",
    "wrapv",
    "zero-initialized-in-bss",
];

/// `-f` options taking a number.
const F_NUMBER_OPTIONS: &[&str] = &[
    "macro-backtrace-limit",
    "error-limit",
    "template-backtrace-limit",
    "bracket-depth",
];

/// Why a flag is refused, or `None` when it is allowed.
pub fn refusal(flag: &str, root: &GadgetRoot) -> Option<String> {
    let named = |what: &str| Some(format!("`{flag}` {what}"));
    if flag.is_empty() {
        return Some("an empty argument".into());
    }
    if flag.starts_with('@') {
        return named("reads compiler arguments from a file");
    }
    if !flag.starts_with('-') {
        return named(
            "is not a flag (cflags are extra compiler flags; the source is `ebpfsource`)",
        );
    }
    if let Some(def) = flag.strip_prefix("-D").or_else(|| flag.strip_prefix("-U")) {
        return if def.is_empty() || def.starts_with('=') {
            named("needs the macro name in the same item (`-DNAME=VALUE`)")
        } else {
            None
        };
    }
    if let Some(dir) = flag.strip_prefix("-I") {
        if dir.is_empty() {
            return named("needs the directory in the same item (`-Iinclude`)");
        }
        return root.resolve(Path::new(dir)).err().map(|e| {
            format!(
                "`{flag}`: `{dir}` {e} (only directories inside the gadget may be added; use `-I` on the command line for others)"
            )
        });
    }
    if let Some(w) = flag.strip_prefix("-W") {
        return match w.get(..2) {
            Some("l,") => named("passes options to the linker"),
            Some("p,") => named("passes options to the preprocessor (such as dependency files)"),
            Some("a,") => named("passes options to the assembler"),
            _ if w.is_empty() => named("is incomplete"),
            _ => None,
        };
    }
    if let Some(f) = flag.strip_prefix("-f") {
        return f_refusal(flag, f);
    }
    if let Some(std) = flag.strip_prefix("-std=") {
        return if !std.is_empty()
            && std
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == ':')
        {
            None
        } else {
            named("names no language standard")
        };
    }
    if let Some(g) = flag.strip_prefix("-g") {
        return if g.starts_with("split-dwarf") {
            named("writes a separate debug file")
        } else if g
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            None
        } else {
            named("is not a debug-info flag")
        };
    }
    if let Some(o) = flag.strip_prefix("-O") {
        return match o {
            "" | "0" | "1" | "2" | "3" | "s" | "z" | "g" => None,
            _ => named("is not an optimization level (-O0..-O3, -Os, -Oz, -Og)"),
        };
    }
    if let Some(m) = flag.strip_prefix("-m") {
        return if m == "llvm" {
            named("passes raw options to LLVM")
        } else if !m.is_empty()
            && m.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_=.,+".contains(c))
        {
            None
        } else {
            named("is not a target option")
        };
    }
    Some(other_refusal(flag))
}

/// Why `-f<f>` is refused, or `None` for a name on the allow-list ([`F_FLAGS`], the number
/// options, `-fdiagnostics-color=WHEN`).
fn f_refusal(flag: &str, f: &str) -> Option<String> {
    let named = |what: &str| Some(format!("`{flag}` {what}"));
    let base = f.strip_prefix("no-").unwrap_or(f);
    if F_FLAGS.contains(&base) {
        return None;
    }
    if let Some((name, value)) = f.split_once('=') {
        if F_NUMBER_OPTIONS.contains(&name) && value.parse::<u32>().is_ok() {
            return None;
        }
        if name == "diagnostics-color" && matches!(value, "always" | "never" | "auto") {
            return None;
        }
    }
    if base.starts_with("plugin") || base.starts_with("pass-plugin") {
        return named("loads a plugin into the compiler");
    }
    if base.starts_with("time-trace") || base.starts_with("profile") || base.starts_with("save") {
        return named("writes files the build does not expect");
    }
    named(&format!(
        "is not on the `-f` allow-list ({})",
        "see docs/authoring.md, `cflags`"
    ))
}

/// Why a flag of no allowed family is refused: what it would do, where that is known.
fn other_refusal(flag: &str) -> String {
    let named = |what: &str| format!("`{flag}` {what}");
    match flag {
        "-Xclang" | "-Xpreprocessor" | "-Xassembler" | "-Xlinker" => {
            named("passes raw options to a compiler stage")
        }
        "-load" => named("loads a plugin into the compiler"),
        "-o" | "-c" | "-S" | "-E" | "-emit-llvm" | "-target" | "--target" => {
            named("is set by ig-image itself (output, mode or target)")
        }
        f if f.starts_with("-M") => named("writes dependency files (ig-image sets them itself)"),
        f if f.starts_with("-o") || f.starts_with("--output") => {
            named("is set by ig-image itself (output)")
        }
        f if f.starts_with("-target") || f.starts_with("--target") => {
            named("is set by ig-image itself (target)")
        }
        _ => named("is not on the cflags allow-list (see docs/authoring.md, `cflags`)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> (tempfile::TempDir, GadgetRoot) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("g");
        std::fs::create_dir_all(dir.join("inc")).unwrap();
        let root = GadgetRoot::new(&dir).unwrap();
        (tmp, root)
    }

    #[test]
    fn the_allow_list_accepts_ordinary_flags() {
        let (_t, r) = root();
        for f in [
            "-DFOO",
            "-DFOO=1",
            "-UBAR",
            "-Iinc",
            "-I./inc/../inc",
            "-Wall",
            "-Wno-unused-variable",
            "-Werror",
            "-Wframe-larger-than=512",
            "-fno-stack-protector",
            "-fno-builtin",
            "-funroll-loops",
            "-ferror-limit=5",
            "-fdiagnostics-color=never",
            "-std=gnu11",
            "-g",
            "-g0",
            "-gdwarf-5",
            "-O2",
            "-Os",
            "-mcpu=v3",
            "-mattr=+alu32",
        ] {
            assert_eq!(refusal(f, &r), None, "{f}");
        }
    }

    #[test]
    fn the_attacks_of_issue_12_are_refused_by_name() {
        let (_t, r) = root();
        for (f, why) in [
            ("-fplugin=./x.so", "plugin"),
            ("-fpass-plugin=/abs/x.so", "plugin"),
            ("-Xclang", "raw options"),
            ("-load", "plugin"),
            ("/abs/x.so", "not a flag"),
            ("-ftime-trace=/abs/path", "writes files"),
            ("-ftime-trace", "writes files"),
            ("-o/path", "output"),
            ("-o", "output"),
            ("--output=/x", "output"),
            ("-MF", "dependency"),
            ("-MD", "dependency"),
            ("-Wp,-MD,/tmp/x", "preprocessor"),
            ("-Wl,-o,/tmp/x", "linker"),
            ("-Wa,-o,/tmp/x", "assembler"),
            ("@args.txt", "file"),
            ("-mllvm", "LLVM"),
            ("-I/etc", "outside the gadget"),
            ("-I../", "outside the gadget"),
            ("-isystem/etc", "allow-list"),
            ("-include/etc/passwd", "allow-list"),
            ("-gsplit-dwarf", "separate debug"),
            ("-fdebug-prefix-map=/=/x", "allow-list"),
            ("-D", "macro name"),
            ("-O9", "optimization"),
            ("", "empty"),
        ] {
            let got = refusal(f, &r).unwrap_or_else(|| panic!("{f} accepted"));
            assert!(got.contains(why), "{f}: {got}");
            if !f.is_empty() {
                assert!(got.contains(&format!("`{f}`")), "{f}: {got}");
            }
        }
    }
}
