//! A claim on a target (service, operation, what it acts on), held across the state directory
//! while an action looks and acts, so that two items or two runs cannot make one thing twice.

use std::any::Any;

/// What AWS does with a second request like one already sent: it decides whether an answer that
/// was lost must be let land before anything looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Duplicates {
    /// AWS refuses it (a name or an email unique in its scope, an assignment that exists): a lost
    /// answer is settled by looking, and a conflict means "it exists": no wait.
    Refused,
    /// AWS makes a second one (CreateCase, a call by name without a client token): a request
    /// whose answer was lost is let land before anything looks.
    Made,
}

/// A held claim on a target: no other item, run or process of the state directory acts on it
/// until this is dropped.
pub struct Claim(#[allow(dead_code)] Option<Box<dyn Any + Send + Sync>>);

impl Claim {
    pub fn none() -> Claim {
        Claim(None)
    }

    pub fn holding(guard: Box<dyn Any + Send + Sync>) -> Claim {
        Claim(Some(guard))
    }

    fn file(&self) -> Option<&std::fs::File> {
        self.0.as_ref().and_then(|g| g.downcast_ref::<std::fs::File>())
    }

    /// Whether a holder said it made something ([`Claim::made`]) after `since`: whatever was
    /// looked up before then may be out of date. (The claim file holds the time of the last
    /// `made`, in nanoseconds since the epoch; a new file holds nothing.)
    pub fn made_since(&self, since: std::time::SystemTime) -> bool {
        use std::os::unix::fs::FileExt;
        let Some(f) = self.file() else { return false };
        let mut buf = [0u8; 40];
        let n = f.read_at(&mut buf, 0).unwrap_or(0);
        let made: Option<u128> = std::str::from_utf8(&buf[..n]).ok().and_then(|s| s.trim().parse().ok());
        let since = since
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        made.is_some_and(|m| m >= since)
    }

    /// Says, for the next holder, that this one made the target.
    pub fn made(&self) {
        use std::os::unix::fs::FileExt;
        if let Some(f) = self.file() {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0);
            let text = format!("{now:>39}\n");
            let _ = f.write_at(text.as_bytes(), 0);
        }
    }
}
