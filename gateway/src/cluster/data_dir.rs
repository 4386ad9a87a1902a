//! What a gateway's data dir records beside its segments, so that it
//! outlives the region: the cluster whose log it holds, and the highest
//! sequencer lease epoch this gateway took or saw (with the region
//! generation it belonged to).
//!
//! The cluster: `<data dir>/cluster` names the cluster (and its Kafka
//! cluster id) that wrote the data dir. A gateway of another cluster
//! refuses it: it would rebuild or fill its region from that cluster's
//! segments and serve its topics as its own (issue 20). `--adopt-data-dir`
//! overrides, and the file then names the new cluster.
//!
//! Epochs fence a sequencer that lost its lease; they only work if they
//! only increase. The region holds the current epoch, but a region that was
//! lost and rebuilt starts from a blank lease: without this record the
//! rebuilding gateway took epoch 1 while its old peers had seen 3
//! (issue 20). Every gateway records each epoch it takes or sees in
//! `<data dir>/gateway-<slot>.epoch`, and the first epoch it takes on any
//! region is above every epoch recorded in its data dir.
//!
//! Members: `<data dir>/gateway-<slot>.members` lists the gateways that
//! were live the last time this one looked (rewritten when that changes).
//! A lost region is rebuilt only once every one of them is back (or the
//! operator says `--unclean-region-rebuild`): their segments may hold
//! acknowledged entries that this gateway's lack (issue 20).
//!
//! Each file is written whole and atomically: a temporary file, fsync,
//! rename over the old one, fsync of the directory; a reader finds the old
//! record or the new one, never a torn one.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use cxlkafka_log::layout::GatewayIndex;
use cxlkafka_log::RegionGeneration;

use super::lock;

const EPOCH_SUFFIX: &str = ".epoch";
const MEMBERS_SUFFIX: &str = ".members";
const IDENTITY_FILE: &str = "cluster";

/// The cluster `data_dir` records (`None` for a data dir without the file:
/// new, or written before it existed), refused when it is another than
/// `name` and `adopt` is off. Writes nothing: a start checks this before
/// it touches the region, and claims the data dir only once it joined.
pub(super) fn refuse_another_cluster(
    data_dir: &Path,
    name: &str,
    adopt: bool,
) -> Result<Option<String>, String> {
    let path = data_dir.join(IDENTITY_FILE);
    let recorded = match std::fs::read_to_string(&path) {
        Ok(text) => parse_fields(&text)
            .find(|(key, _)| *key == "cluster.name")
            .map(|(_, value)| value.to_owned()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => None,
        Err(error) => return Err(format!("cannot read {}: {error}", path.display())),
    };
    match recorded.as_deref() {
        Some(recorded) if recorded != name && !adopt => Err(format!(
            "data dir {dir} holds cluster {recorded:?}'s log ({file} says so), but this gateway \
             serves cluster {name:?}: serving it would show {recorded:?}'s topics as {name:?}'s. \
             Point --data-dir at {name:?}'s data, or pass --adopt-data-dir \
             (CXLKAFKA_ADOPT_DATA_DIR=true) to serve it as {name:?}'s",
            dir = data_dir.display(),
            file = path.display(),
        )),
        _ => Ok(recorded),
    }
}

/// Records that `data_dir` holds cluster `name`'s log, or checks that it
/// does: a data dir written by another cluster is refused unless `adopt`.
/// A data dir without the file (new, or written before it existed) is
/// claimed.
pub(super) fn claim_for_cluster(
    data_dir: &Path,
    name: &str,
    kafka_cluster_id: &str,
    adopt: bool,
) -> Result<(), String> {
    std::fs::create_dir_all(data_dir)
        .map_err(|error| format!("cannot create {}: {error}", data_dir.display()))?;
    let path = data_dir.join(IDENTITY_FILE);
    match refuse_another_cluster(data_dir, name, adopt)? {
        Some(recorded) if recorded == name => return Ok(()),
        Some(recorded) => tracing::warn!(
            dir = %data_dir.display(),
            from = %recorded,
            to = name,
            "--adopt-data-dir: serving another cluster's data dir as this cluster's"
        ),
        None => tracing::info!(dir = %data_dir.display(), cluster = name, "claimed the data dir"),
    }
    let contents = format!(
        "# cxlkafka: the cluster whose log this data dir holds\n\
         cluster.name={name}\ncluster.id={kafka_cluster_id}\n"
    );
    write_atomically(data_dir, IDENTITY_FILE, &contents)
        .map_err(|error| format!("cannot write {}: {error}", path.display()))
}

/// Replaces `dir/name` with `contents` so that a crash leaves either the old
/// file or the new one. The temporary file is named after the process and a
/// counter: gateways sharing a data dir (one host, tests) may write the same
/// file at once, and each must rename its own.
pub(super) fn write_atomically(dir: &Path, name: &str, contents: &str) -> std::io::Result<()> {
    static WRITES: AtomicU64 = AtomicU64::new(0);
    let temporary = dir.join(format!(
        ".{name}.{}.{}.tmp",
        std::process::id(),
        WRITES.fetch_add(1, Ordering::Relaxed)
    ));
    let mut file = File::create(&temporary)?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&temporary, dir.join(name))?;
    File::open(dir)?.sync_all()
}

/// `key=value` lines (blank lines and `#` comments skipped).
pub(super) fn parse_fields(text: &str) -> impl Iterator<Item = (&str, &str)> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .filter_map(|line| line.split_once('='))
        .map(|(key, value)| (key.trim(), value.trim()))
}

/// An epoch and the region generation it was taken or seen in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct EpochMark {
    pub(super) epoch: u64,
    pub(super) generation: RegionGeneration,
}

impl EpochMark {
    fn to_text(self) -> String {
        format!(
            "# cxlkafka: the highest sequencer lease epoch this gateway took or saw\n\
             epoch={}\nregion_generation={}\n",
            self.epoch, self.generation
        )
    }

    fn parse(path: &Path, text: &str) -> Result<Self, String> {
        let mut mark = EpochMark::default();
        let mut saw_epoch = false;
        for (key, value) in parse_fields(text) {
            match key {
                "epoch" => {
                    mark.epoch = value
                        .parse()
                        .map_err(|error| format!("{}: epoch {value:?}: {error}", path.display()))?;
                    saw_epoch = true;
                }
                "region_generation" => {
                    mark.generation = value
                        .parse()
                        .map_err(|error| format!("{}: {error}", path.display()))?;
                }
                _ => {}
            }
        }
        if !saw_epoch {
            return Err(format!("{}: no epoch line", path.display()));
        }
        Ok(mark)
    }
}

/// The gateways that were live when this one last looked.
pub(super) struct MembersRecord {
    dir: PathBuf,
    file_name: String,
    /// What the file says (as read at start, or last written).
    recorded: Mutex<Vec<GatewayIndex>>,
}

impl MembersRecord {
    pub(super) fn open(data_dir: &Path, gateway: GatewayIndex) -> Result<Self, String> {
        let file_name = format!("gateway-{gateway}{MEMBERS_SUFFIX}");
        let path = data_dir.join(&file_name);
        let recorded = match std::fs::read_to_string(&path) {
            Ok(text) => parse_fields(&text)
                .filter(|(key, _)| *key == "gateway")
                .map(|(_, value)| {
                    value
                        .parse()
                        .map_err(|_| format!("{}: {value:?} is not a gateway", path.display()))
                })
                .collect::<Result<Vec<GatewayIndex>, String>>()?,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(error) => return Err(format!("cannot read {}: {error}", path.display())),
        };
        Ok(Self {
            dir: data_dir.to_path_buf(),
            file_name,
            recorded: Mutex::new(recorded),
        })
    }

    /// The gateways recorded (none when never recorded).
    pub(super) fn recorded(&self) -> Vec<GatewayIndex> {
        lock(&self.recorded).clone()
    }

    /// Records `live` (lowest first) if it differs from what is recorded.
    pub(super) fn record(&self, live: &[GatewayIndex]) -> Result<(), String> {
        let mut recorded = lock(&self.recorded);
        if recorded.as_slice() == live {
            return Ok(());
        }
        let text: String = live
            .iter()
            .map(|gateway| format!("gateway={gateway}\n"))
            .collect();
        write_atomically(&self.dir, &self.file_name, &text).map_err(|error| {
            format!(
                "cannot record the live gateways in {}: {error}",
                self.dir.join(&self.file_name).display()
            )
        })?;
        *recorded = live.to_vec();
        Ok(())
    }
}

/// This gateway's record of epochs, and the highest one it knows of.
pub(super) struct EpochRecord {
    dir: PathBuf,
    file_name: String,
    /// The highest mark recorded in the data dir (any slot's file) at
    /// start, or taken or seen since.
    highest: Mutex<EpochMark>,
}

impl EpochRecord {
    /// Reads every epoch record in `data_dir` (other slots' too: a gateway
    /// that once ran under another slot left its epochs there).
    pub(super) fn open(data_dir: &Path, gateway: GatewayIndex) -> Result<Self, String> {
        std::fs::create_dir_all(data_dir)
            .map_err(|error| format!("cannot create {}: {error}", data_dir.display()))?;
        let entries = std::fs::read_dir(data_dir)
            .map_err(|error| format!("cannot list {}: {error}", data_dir.display()))?;
        let mut highest = EpochMark::default();
        for entry in entries {
            let path = entry
                .map_err(|error| format!("cannot list {}: {error}", data_dir.display()))?
                .path();
            let is_record = path
                .file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| name.starts_with("gateway-") && name.ends_with(EPOCH_SUFFIX));
            if !is_record {
                continue;
            }
            let text = std::fs::read_to_string(&path)
                .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
            let mark = EpochMark::parse(&path, &text)?;
            if mark.epoch > highest.epoch {
                highest = mark;
            }
        }
        Ok(Self {
            dir: data_dir.to_path_buf(),
            file_name: format!("gateway-{gateway}{EPOCH_SUFFIX}"),
            highest: Mutex::new(highest),
        })
    }

    /// The highest epoch this gateway knows of.
    pub(super) fn highest(&self) -> EpochMark {
        *lock(&self.highest)
    }

    /// The epoch to take over a lease now at `lease_epoch`: above it and
    /// above every epoch this data dir recorded.
    pub(super) fn next_above(&self, lease_epoch: u64) -> u64 {
        lease_epoch.max(self.highest().epoch) + 1
    }

    /// Records `epoch` (taken or seen in the region of `generation`) if it
    /// is the highest yet. Returns the error of a write that failed; the
    /// mark is kept in memory all the same, so that this process still
    /// takes epochs above it and does not retry the write on every look.
    pub(super) fn record(&self, epoch: u64, generation: RegionGeneration) -> Result<(), String> {
        let mut highest = lock(&self.highest);
        let mark = EpochMark { epoch, generation };
        // Epoch 0 is a lease nobody ever took: nothing to record.
        if epoch == 0 || epoch < highest.epoch || *highest == mark {
            return Ok(());
        }
        *highest = mark;
        write_atomically(&self.dir, &self.file_name, &mark.to_text()).map_err(|error| {
            format!(
                "cannot record sequencer epoch {epoch} in {}: {error}",
                self.dir.join(&self.file_name).display()
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_highest_epoch_of_every_slot_file_survives_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let generation = RegionGeneration::mint();
        let zero = EpochRecord::open(dir.path(), 0).unwrap();
        assert_eq!(zero.next_above(0), 1, "an empty data dir floors nothing");
        zero.record(3, generation).unwrap();
        zero.record(2, generation).unwrap();
        let one = EpochRecord::open(dir.path(), 1).unwrap();
        one.record(5, generation).unwrap();

        let reopened = EpochRecord::open(dir.path(), 0).unwrap();
        assert_eq!(
            reopened.highest(),
            EpochMark {
                epoch: 5,
                generation
            }
        );
        assert_eq!(reopened.next_above(1), 6, "above the data dir's epochs");
        assert_eq!(reopened.next_above(9), 10, "and above the region's");
        let text = std::fs::read_to_string(dir.path().join("gateway-0.epoch")).unwrap();
        assert!(text.contains("epoch=3\n"), "{text}");
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .filter(|name| name.to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "renamed into place: {leftovers:?}");
    }

    #[test]
    fn a_data_dir_is_claimed_once_and_refused_to_another_cluster_unless_adopted() {
        let dir = tempfile::tempdir().unwrap();
        claim_for_cluster(dir.path(), "alpha", "YWxwaGE", false).unwrap();
        claim_for_cluster(dir.path(), "alpha", "YWxwaGE", false).unwrap();
        let text = std::fs::read_to_string(dir.path().join("cluster")).unwrap();
        assert!(text.contains("cluster.name=alpha\n"), "{text}");
        assert!(text.contains("cluster.id=YWxwaGE\n"), "{text}");

        let error = claim_for_cluster(dir.path(), "beta", "YmV0YQ", false).unwrap_err();
        assert!(
            error.contains("\"alpha\"") && error.contains("\"beta\""),
            "{error}"
        );
        assert!(error.contains("--adopt-data-dir"), "{error}");
        claim_for_cluster(dir.path(), "beta", "YmV0YQ", true).unwrap();
        claim_for_cluster(dir.path(), "beta", "YmV0YQ", false).unwrap();
        assert!(claim_for_cluster(dir.path(), "alpha", "YWxwaGE", false).is_err());
    }

    #[test]
    fn gateways_sharing_a_data_dir_may_claim_it_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let claims: Vec<_> = (0..8)
            .map(|_| {
                let path = dir.path().to_path_buf();
                std::thread::spawn(move || claim_for_cluster(&path, "alpha", "YWxwaGE", false))
            })
            .collect();
        for claim in claims {
            claim.join().unwrap().expect("every claim succeeds");
        }
        let text = std::fs::read_to_string(dir.path().join("cluster")).unwrap();
        assert!(text.contains("cluster.name=alpha\n"), "{text}");
    }

    #[test]
    fn the_live_gateways_recorded_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let members = MembersRecord::open(dir.path(), 1).unwrap();
        assert!(members.recorded().is_empty(), "never recorded");
        members.record(&[0, 1, 2]).unwrap();
        members.record(&[0, 1, 2]).unwrap();
        assert_eq!(
            MembersRecord::open(dir.path(), 1).unwrap().recorded(),
            vec![0, 1, 2]
        );
        members.record(&[1]).unwrap();
        assert_eq!(
            MembersRecord::open(dir.path(), 1).unwrap().recorded(),
            vec![1]
        );
        assert!(MembersRecord::open(dir.path(), 2)
            .unwrap()
            .recorded()
            .is_empty());
    }

    #[test]
    fn an_unreadable_epoch_record_is_refused_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("gateway-2.epoch"), "epoch=seven\n").unwrap();
        let error = EpochRecord::open(dir.path(), 0).err().expect("refused");
        assert!(error.contains("gateway-2.epoch"), "{error}");
    }
}
