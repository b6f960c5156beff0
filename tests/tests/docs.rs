//! The command reference in docs/commands/ is `--help` itself: this test fails when they drift
//! (regenerate with `scripts/gen-command-docs`).

use ig_image_tests::{assert_success, ig_image_bin, run, workspace_root};

fn help(args: &[&str]) -> String {
    let mut cmd = std::process::Command::new(ig_image_bin());
    cmd.args(args)
        .arg("--help")
        .env_remove("IG_IMAGE_STORE")
        .env_remove("COLUMNS");
    let out = run(cmd);
    assert_success(&out);
    String::from_utf8(out.stdout).unwrap()
}

fn page_block(name: &str) -> String {
    let path = workspace_root()
        .join("docs/commands")
        .join(format!("{name}.md"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run scripts/gen-command-docs)", path.display()));
    let start = text.find("```text\n").expect("a ```text block") + "```text\n".len();
    let end = text[start..].find("\n```").expect("block end") + start;
    text[start..end].to_string()
}

#[test]
fn every_command_page_matches_its_help() {
    let top = help(&[]);
    let commands: Vec<String> = top
        .split("Commands:")
        .nth(1)
        .unwrap()
        .split("\n\n")
        .next()
        .unwrap()
        .lines()
        .filter_map(|l| {
            // A command line is indented by exactly two spaces; wrapped descriptions by more.
            l.strip_prefix("  ")
                .filter(|l| !l.starts_with(' '))
                .and_then(|l| l.split_whitespace().next())
                .map(str::to_string)
        })
        .filter(|c| c != "help")
        .collect();
    assert!(commands.len() >= 7, "{commands:?}");
    for command in commands {
        assert_eq!(
            page_block(&command),
            help(&[&command]).trim_end(),
            "docs/commands/{command}.md is stale: run scripts/gen-command-docs"
        );
    }
}
