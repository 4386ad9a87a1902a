//! This gateway's log levels as BROKER_LOGGER config resources (Kafka's
//! KIP-412): DescribeConfigs lists the loggers with their levels and
//! IncrementalAlterConfigs changes them, live, on this gateway only.
//!
//! A logger is a `tracing` target: `root` (every target no other directive
//! names), a crate (`cxlkafka_gateway`, `cxlkafka_sequencer`,
//! `cxlkafka_log`) or a module path in one (`cxlkafka_gateway::cluster`);
//! as with `tracing`'s filter, the longest target that is a prefix of an
//! event's decides its level. The levels are Kafka's log4j names; FATAL is
//! ERROR here (`tracing` has no level above it) and OFF silences a logger.
//!
//! A change rebuilds the log filter from `--log-level` and the changes made
//! since start, and swaps it in through the subscriber's reload handle.
//! Nothing is persisted, as in Kafka: a restart starts again from
//! `--log-level`. Deleting a logger's level removes the change, so the
//! logger goes back to what `--log-level` gives it.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Mutex;

use tracing::level_filters::LevelFilter;
use tracing_subscriber::EnvFilter;

/// The name of the logger every target falls back to.
pub const ROOT: &str = "root";

/// The loggers every describe lists, besides `root` and those named by
/// `--log-level` or changed since start.
pub const CRATE_LOGGERS: [&str; 3] = ["cxlkafka_gateway", "cxlkafka_log", "cxlkafka_sequencer"];

/// The levels a logger may be set to, as Kafka's message lists them.
pub const VALID_LEVELS: &str = "DEBUG, ERROR, FATAL, INFO, OFF, TRACE, WARN";

/// Kafka's log4j level name as a `tracing` level filter.
pub fn parse_level(name: &str) -> Option<LevelFilter> {
    Some(match name {
        "TRACE" => LevelFilter::TRACE,
        "DEBUG" => LevelFilter::DEBUG,
        "INFO" => LevelFilter::INFO,
        "WARN" => LevelFilter::WARN,
        "ERROR" | "FATAL" => LevelFilter::ERROR,
        "OFF" => LevelFilter::OFF,
        _ => return None,
    })
}

/// A level filter as Kafka names the level.
pub fn level_name(level: LevelFilter) -> &'static str {
    match level {
        LevelFilter::TRACE => "TRACE",
        LevelFilter::DEBUG => "DEBUG",
        LevelFilter::INFO => "INFO",
        LevelFilter::WARN => "WARN",
        LevelFilter::ERROR => "ERROR",
        _ => "OFF",
    }
}

/// Whether `name` can name a logger: `root`, or a target path of Rust
/// identifiers (`a::b`). Anything else (log4j's dotted class names, or
/// characters that mean something in a filter) does not exist here.
pub fn exists(name: &str) -> bool {
    let identifier = |part: &str| {
        part.chars()
            .next()
            .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
            && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    name == ROOT || (!name.is_empty() && name.len() <= 256 && name.split("::").all(identifier))
}

/// One directive of `--log-level`.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Directive {
    /// A bare level: the root logger's.
    Root(LevelFilter),
    /// `target=level` (a bare target means TRACE, as in `tracing`).
    Target(String, LevelFilter),
    /// Anything else (span or field filters): kept as written, not
    /// described.
    Verbatim(String),
}

fn parse_directives(spec: &str) -> Vec<Directive> {
    spec.split(',')
        .map(str::trim)
        .filter(|directive| !directive.is_empty())
        .map(|directive| {
            if directive.contains(['[', '{']) {
                return Directive::Verbatim(directive.to_owned());
            }
            match directive.split_once('=') {
                Some((target, level)) => match LevelFilter::from_str(level.trim()) {
                    Ok(level) => Directive::Target(target.trim().to_owned(), level),
                    Err(_) => Directive::Verbatim(directive.to_owned()),
                },
                None => match LevelFilter::from_str(directive) {
                    Ok(level) => Directive::Root(level),
                    Err(_) => Directive::Target(directive.to_owned(), LevelFilter::TRACE),
                },
            }
        })
        .collect()
}

/// Swaps the log filter in (the subscriber's reload handle).
type Reload = Box<dyn Fn(EnvFilter) -> Result<(), String> + Send + Sync>;

/// The log levels of this gateway: what `--log-level` gave and what
/// BROKER_LOGGER changes made of them since start.
pub struct Loggers {
    base: Vec<Directive>,
    /// Levels set at runtime, by logger (`root` included).
    changed: Mutex<BTreeMap<String, LevelFilter>>,
    /// `None` when no subscriber can be reloaded (tests, `bench sink`):
    /// changes are kept and described, and logging is unchanged.
    reload: Option<Reload>,
}

impl std::fmt::Debug for Loggers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loggers")
            .field("base", &self.base)
            .field("changed", &*self.lock())
            .field("live", &self.reload.is_some())
            .finish()
    }
}

impl Default for Loggers {
    /// `--log-level`'s default (`info`), without a subscriber to reload.
    fn default() -> Self {
        Self::fixed("info")
    }
}

impl Loggers {
    /// The levels of filter `spec`, with nothing to reload.
    pub fn fixed(spec: &str) -> Self {
        Self {
            base: parse_directives(spec),
            changed: Mutex::default(),
            reload: None,
        }
    }

    /// The levels of filter `spec`, applied through `reload` on each
    /// change (a closure over `tracing_subscriber::reload::Handle::reload`).
    pub fn reloadable(
        spec: &str,
        reload: impl Fn(EnvFilter) -> Result<(), String> + Send + Sync + 'static,
    ) -> Self {
        Self {
            reload: Some(Box::new(reload)),
            ..Self::fixed(spec)
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, LevelFilter>> {
        self.changed
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Every logger worth listing with its level, `root` first.
    pub fn levels(&self) -> Vec<(String, &'static str)> {
        let changed = self.lock();
        let mut names: Vec<String> = CRATE_LOGGERS
            .iter()
            .map(|name| (*name).to_owned())
            .collect();
        names.extend(self.base.iter().filter_map(|directive| match directive {
            Directive::Target(target, _) => Some(target.clone()),
            _ => None,
        }));
        names.extend(changed.keys().filter(|name| *name != ROOT).cloned());
        names.sort();
        names.dedup();
        let mut levels = vec![(ROOT.to_owned(), level_name(self.root(&changed)))];
        levels.extend(names.into_iter().map(|name| {
            let level = self.level_of(&changed, &name);
            (name, level_name(level))
        }));
        levels
    }

    fn root(&self, changed: &BTreeMap<String, LevelFilter>) -> LevelFilter {
        changed.get(ROOT).copied().unwrap_or_else(|| {
            // No bare level: `tracing`'s filter enables nothing else.
            self.base
                .iter()
                .rev()
                .find_map(|directive| match directive {
                    Directive::Root(level) => Some(*level),
                    _ => None,
                })
                .unwrap_or(LevelFilter::OFF)
        })
    }

    /// The level of target `name`: the longest changed or `--log-level`
    /// target that is a prefix of it (a change wins a tie), else root's.
    fn level_of(&self, changed: &BTreeMap<String, LevelFilter>, name: &str) -> LevelFilter {
        let base = self.base.iter().filter_map(|directive| match directive {
            Directive::Target(target, level) => Some((target.as_str(), *level, 0)),
            _ => None,
        });
        let runtime = changed
            .iter()
            .filter(|(target, _)| *target != ROOT)
            .map(|(target, level)| (target.as_str(), *level, 1));
        base.chain(runtime)
            .filter(|(target, _, _)| name.starts_with(target))
            .max_by_key(|(target, _, rank)| (target.len(), *rank))
            .map_or_else(|| self.root(changed), |(_, level, _)| level)
    }

    /// The filter `--log-level` and `changed` describe together.
    fn filter_spec(&self, changed: &BTreeMap<String, LevelFilter>) -> String {
        let mut directives = Vec::new();
        if changed.contains_key(ROOT) || self.base.iter().any(|d| matches!(d, Directive::Root(_))) {
            directives.push(self.root(changed).to_string());
        }
        for directive in &self.base {
            match directive {
                Directive::Root(_) => {}
                Directive::Target(target, _) if changed.contains_key(target) => {}
                Directive::Target(target, level) => directives.push(format!("{target}={level}")),
                Directive::Verbatim(text) => directives.push(text.clone()),
            }
        }
        for (target, level) in changed.iter().filter(|(target, _)| *target != ROOT) {
            directives.push(format!("{target}={level}"));
        }
        directives.join(",")
    }

    /// Sets (`Some`) or removes (`None`) the level of each named logger,
    /// all at once, and applies the new filter. Names are checked by the
    /// caller ([`exists`]); the error says why the filter was not applied.
    pub fn change(&self, changes: &[(&str, Option<LevelFilter>)]) -> Result<(), String> {
        let mut changed = self.lock();
        let mut next = changed.clone();
        for (name, level) in changes {
            match level {
                Some(level) => next.insert((*name).to_owned(), *level),
                None => next.remove(*name),
            };
        }
        let spec = self.filter_spec(&next);
        let filter = EnvFilter::try_new(&spec).map_err(|error| format!("{spec}: {error}"))?;
        if let Some(reload) = &self.reload {
            reload(filter)?;
        }
        *changed = next;
        Ok(())
    }

    /// The filter now in force, as `--log-level` would spell it.
    pub fn current_filter(&self) -> String {
        self.filter_spec(&self.lock())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use tracing_subscriber::layer::SubscriberExt;

    fn level(loggers: &Loggers, name: &str) -> &'static str {
        loggers
            .levels()
            .into_iter()
            .find(|(logger, _)| logger == name)
            .map(|(_, level)| level)
            .unwrap_or_else(|| panic!("{name} listed"))
    }

    #[test]
    fn levels_follow_the_most_specific_target() {
        let loggers = Loggers::fixed("warn,cxlkafka_gateway=debug,h2[conn]=trace");
        assert_eq!(level(&loggers, "root"), "WARN");
        assert_eq!(level(&loggers, "cxlkafka_gateway"), "DEBUG");
        assert_eq!(level(&loggers, "cxlkafka_log"), "WARN");
        loggers
            .change(&[("cxlkafka_gateway::cluster", Some(LevelFilter::ERROR))])
            .expect("valid");
        assert_eq!(level(&loggers, "cxlkafka_gateway::cluster"), "ERROR");
        assert_eq!(level(&loggers, "cxlkafka_gateway"), "DEBUG");
        loggers
            .change(&[
                ("root", Some(LevelFilter::OFF)),
                ("cxlkafka_gateway", Some(LevelFilter::INFO)),
            ])
            .expect("valid");
        assert_eq!(level(&loggers, "root"), "OFF");
        assert_eq!(level(&loggers, "cxlkafka_sequencer"), "OFF");
        assert_eq!(
            loggers.current_filter(),
            "off,h2[conn]=trace,cxlkafka_gateway=info,cxlkafka_gateway::cluster=error"
        );
        loggers
            .change(&[("cxlkafka_gateway", None)])
            .expect("valid");
        assert_eq!(
            level(&loggers, "cxlkafka_gateway"),
            "DEBUG",
            "back to --log-level"
        );
        assert_eq!(loggers.levels()[0].0, "root");
    }

    #[test]
    fn only_target_paths_and_root_exist() {
        assert!(exists("root"));
        assert!(exists("cxlkafka_gateway::cluster::tailer"));
        assert!(!exists("kafka.server.ReplicaManager"));
        assert!(!exists("a=b"));
        assert!(!exists(""));
        assert!(!exists("a::"));
        assert_eq!(parse_level("FATAL"), Some(LevelFilter::ERROR));
        assert_eq!(parse_level("info"), None, "log4j names are upper case");
    }

    #[test]
    fn a_change_reloads_the_live_filter() {
        let (layer, handle) = tracing_subscriber::reload::Layer::new(
            EnvFilter::try_new("info").expect("valid filter"),
        );
        let subscriber = tracing_subscriber::registry().with(layer);
        let reloads = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = Arc::clone(&reloads);
        let loggers = Loggers::reloadable("info", move |filter| {
            counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            handle.reload(filter).map_err(|error| error.to_string())
        });
        tracing::subscriber::with_default(subscriber, || {
            assert!(!tracing::enabled!(target: "cxlkafka_gateway::x", tracing::Level::DEBUG));
            loggers
                .change(&[("cxlkafka_gateway", Some(LevelFilter::DEBUG))])
                .expect("applied");
            tracing::callsite::rebuild_interest_cache();
            assert!(tracing::enabled!(target: "cxlkafka_gateway::x", tracing::Level::DEBUG));
            assert!(!tracing::enabled!(target: "cxlkafka_log", tracing::Level::DEBUG));
            loggers
                .change(&[("root", Some(LevelFilter::OFF)), ("cxlkafka_gateway", None)])
                .expect("applied");
            tracing::callsite::rebuild_interest_cache();
            assert!(!tracing::enabled!(target: "cxlkafka_gateway::x", tracing::Level::ERROR));
        });
        assert_eq!(reloads.load(std::sync::atomic::Ordering::Relaxed), 2);
    }
}
