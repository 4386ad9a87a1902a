//! `cxlkafka serve --config FILE`: the serve flags from a TOML file.
//!
//! Keys are the flags' long names (`region-size = "2GiB"`; `region_size`
//! works too), values the flag's value as a TOML string, integer, float or
//! boolean. A flag given on the command line wins over its environment
//! variable, which wins over the file: the file only fills in flags set
//! neither way. That is done by adding `--name=value` to the command line
//! before clap parses it, so every value goes through the flag's own parser
//! and its errors name the flag. An unknown key is refused, naming the file.

use std::ffi::OsString;
use std::path::Path;

use clap::CommandFactory;

use super::cli::Cli;

/// The flag that names the file.
const CONFIG_FLAG: &str = "config";
/// The environment variable that names it when the flag is absent.
const CONFIG_ENV: &str = "CXLKAFKA_CONFIG";

/// `argv` with the serve flags of the config file added (when `serve` is
/// the subcommand and a file is named); unchanged otherwise.
pub fn with_config_file(argv: Vec<OsString>) -> Result<Vec<OsString>, String> {
    if argv.get(1).and_then(|arg| arg.to_str()) != Some("serve") {
        return Ok(argv);
    }
    let named = config_path(&argv).or_else(|| std::env::var_os(CONFIG_ENV));
    let Some(path) = named else {
        return Ok(argv);
    };
    let text = std::fs::read_to_string(&path)
        .map_err(|error| format!("--config {}: {error}", Path::new(&path).display()))?;
    let flags = flags_from_toml(&text, &argv, |name| std::env::var_os(name).is_some())
        .map_err(|error| format!("--config {}: {error}", Path::new(&path).display()))?;
    let mut argv = argv;
    argv.extend(flags.into_iter().map(OsString::from));
    Ok(argv)
}

/// The value of `--config` on the command line, if any.
fn config_path(argv: &[OsString]) -> Option<OsString> {
    let long = format!("--{CONFIG_FLAG}");
    let with_value = format!("--{CONFIG_FLAG}=");
    let mut args = argv.iter();
    while let Some(arg) = args.next() {
        let text = arg.to_str()?;
        if text == "--" {
            return None;
        }
        if text == long {
            return args.next().cloned();
        }
        if let Some(value) = text.strip_prefix(&with_value) {
            return Some(value.into());
        }
    }
    None
}

/// The `--name=value` arguments the TOML `text` adds: one per key whose
/// flag is neither on `argv` nor set through its environment variable
/// (`env_is_set`).
fn flags_from_toml(
    text: &str,
    argv: &[OsString],
    env_is_set: impl Fn(&str) -> bool,
) -> Result<Vec<String>, String> {
    let table: toml::Table = text.parse().map_err(|error| format!("{error}"))?;
    let command = Cli::command();
    let serve = command
        .find_subcommand("serve")
        .ok_or("no serve subcommand")?;
    let mut flags = Vec::new();
    for (key, value) in &table {
        let name = key.replace('_', "-");
        let arg = serve
            .get_arguments()
            .find(|arg| arg.get_long() == Some(name.as_str()))
            .filter(|_| name != CONFIG_FLAG)
            .ok_or_else(|| {
                format!("unknown key {key:?}: keys are serve's flags, such as \"region-size\"")
            })?;
        let on_command_line = argv.iter().any(|given| {
            given.to_str().is_some_and(|given| {
                given == format!("--{name}") || given.starts_with(&format!("--{name}="))
            })
        });
        let in_environment = arg
            .get_env()
            .and_then(|env| env.to_str())
            .is_some_and(&env_is_set);
        if on_command_line || in_environment {
            continue;
        }
        let value = match value {
            toml::Value::String(text) => text.clone(),
            toml::Value::Integer(number) => number.to_string(),
            toml::Value::Float(number) => number.to_string(),
            toml::Value::Boolean(flag) => flag.to_string(),
            other => {
                return Err(format!(
                    "{key}: expected a string, number or boolean, got {}",
                    other.type_str()
                ))
            }
        };
        flags.push(format!("--{name}={value}"));
    }
    Ok(flags)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn argv(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    fn serve_args(argv: Vec<OsString>) -> super::super::ServeArgs {
        match Cli::try_parse_from(argv).expect("parses").command {
            super::super::Command::Serve(args) => args,
            other => panic!("not serve: {other:?}"),
        }
    }

    const FILE: &str = r#"
        # a gateway of cluster "prod"
        cluster = "prod"
        region-size = "2GiB"
        node_id = 3
        lease-timeout-ms = 500
        auto-create-topics = false
    "#;

    #[test]
    fn keys_become_the_flags_they_name() {
        let base = argv(&["cxlkafka", "serve"]);
        let flags = flags_from_toml(FILE, &base, |_| false).expect("valid");
        let mut full = base;
        full.extend(flags.into_iter().map(OsString::from));
        let args = serve_args(full);
        assert_eq!(args.cluster, "prod");
        assert_eq!(args.region_size.0, 2 << 30);
        assert_eq!(args.node_id, Some(3));
        assert_eq!(args.lease_timeout_ms, 500);
        assert!(!args.auto_create_topics);
    }

    #[test]
    fn the_command_line_and_the_environment_win_over_the_file() {
        let base = argv(&["cxlkafka", "serve", "--cluster", "staging", "--node-id=1"]);
        let flags =
            flags_from_toml(FILE, &base, |env| env == "CXLKAFKA_REGION_SIZE").expect("valid");
        // Keys in name order (a TOML table is a sorted map).
        assert_eq!(
            flags,
            ["--auto-create-topics=false", "--lease-timeout-ms=500"]
        );
    }

    #[test]
    fn an_unknown_key_or_a_table_is_refused() {
        let base = argv(&["cxlkafka", "serve"]);
        let unknown = flags_from_toml("regoin-size = \"1GiB\"", &base, |_| false);
        assert!(unknown.unwrap_err().contains("unknown key \"regoin-size\""));
        let table = flags_from_toml("[cluster]\nname = \"x\"", &base, |_| false);
        assert!(table.unwrap_err().contains("expected a string"));
        let nested = flags_from_toml("config = \"other.toml\"", &base, |_| false);
        assert!(nested.unwrap_err().contains("unknown key"));
        assert!(flags_from_toml("cluster = ", &base, |_| false).is_err());
    }

    #[test]
    fn a_bad_value_fails_in_the_flag_s_own_parser() {
        let base = argv(&["cxlkafka", "serve"]);
        let flags = flags_from_toml("region-size = \"lots\"", &base, |_| false).expect("parsed");
        let mut full = base;
        full.extend(flags.into_iter().map(OsString::from));
        let error = Cli::try_parse_from(full).unwrap_err().to_string();
        assert!(error.contains("--region-size"), "{error}");
    }

    #[test]
    fn the_file_is_named_by_the_flag_in_either_form() {
        assert_eq!(
            config_path(&argv(&["cxlkafka", "serve", "--config", "a.toml"])),
            Some("a.toml".into())
        );
        assert_eq!(
            config_path(&argv(&["cxlkafka", "serve", "--config=b.toml"])),
            Some("b.toml".into())
        );
        assert_eq!(config_path(&argv(&["cxlkafka", "serve"])), None);
    }

    #[test]
    fn other_subcommands_are_left_alone() {
        let bench = argv(&["cxlkafka", "bench", "produce", "--config", "x.toml"]);
        assert_eq!(with_config_file(bench.clone()).expect("unchanged"), bench);
    }
}
