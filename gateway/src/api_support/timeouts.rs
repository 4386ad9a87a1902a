//! Timeouts that several handlers share.

use std::time::Duration;

/// How long an offset commit (OffsetCommit, and the offset deletions of
/// DeleteGroups and OffsetDelete) may take to be ordered and applied.
pub const COMMIT_TIMEOUT: Duration = Duration::from_secs(5);
