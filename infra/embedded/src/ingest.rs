//! The ingest log: what the broker acknowledges, appended to a segment file with one `write`
//! before the PUBACK, so that it survives the process being killed while the durable queues
//! commit it in batches behind it (see [`IngestLog`]).
//!
//! A record: `len: u32 LE` (the bytes after the checksum), `xxh3: u64 LE` of those bytes, then
//! `seq: u64 LE`, the queue name's length (`u8`), the queue name and the body. Segments are
//! `<first seq, 16 hex digits>.log`; the newest one is appended to.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use xxhash_rust::xxh3::xxh3_64;

use crate::EmbeddedError;
use crate::sync::{lock, sync_dir};

/// A segment is sealed, and a new one started, once it holds this many bytes.
const SEGMENT_BYTES: u64 = 16 << 20;

/// `len` and checksum.
const RECORD_HEADER: usize = 12;
/// `seq` and the name's length.
const PAYLOAD_HEADER: usize = 9;

/// A record read back when the log is opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logged {
    /// Its sequence number: strictly increasing, across restarts too (given the `floor` of
    /// [`IngestLog::open`]).
    pub seq: u64,
    /// The queue it is for.
    pub queue: String,
    /// The message body.
    pub body: Vec<u8>,
}

/// An append-only log of messages for the queues, in segment files under one directory.
///
/// **Durability.** [`append`](Self::append) returns once the record is handed to the operating
/// system with one `write`: a killed process loses none; a power loss can lose what the
/// operating system had not written back yet (the log is not fsynced: the queues it feeds are,
/// and a segment is released only after they hold its records durably).
///
/// **Recovery.** [`open`](Self::open) reads every segment back, in sequence order: a record cut
/// short or failing its checksum ends its segment, with a warning (after a kill, that is the
/// write the process died in, never acknowledged; after a power loss or damage to the disk,
/// what follows it is lost). A segment is never appended to after a reopen, and a failed write
/// poisons the log (every later append fails), so no record acknowledged by this process ever
/// follows a torn one. The owner sends again what the queues do not hold yet.
///
/// **Space.** Sealed segments stay until [`release`](Self::release) says their records are
/// durable elsewhere.
#[derive(Debug)]
pub struct IngestLog {
    dir: PathBuf,
    writer: Mutex<Writer>,
}

#[derive(Debug)]
struct Writer {
    file: File,
    /// The active segment's first sequence number (its name).
    first: u64,
    /// The next record's sequence number.
    next: u64,
    /// Bytes in the active segment.
    bytes: u64,
    /// Sealed segments: the last sequence number each holds (`first - 1` if none), and path.
    sealed: Vec<(u64, PathBuf)>,
    buf: Vec<u8>,
    poisoned: bool,
}

fn segment_name(first: u64) -> String {
    format!("{first:016x}.log")
}

/// The segments in `dir`, by first sequence number.
fn segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>, EmbeddedError> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).map_err(EmbeddedError::io)? {
        let path = entry.map_err(EmbeddedError::io)?.path();
        let first = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".log"))
            .filter(|n| n.len() == 16)
            .and_then(|n| u64::from_str_radix(n, 16).ok());
        if let Some(first) = first {
            found.push((first, path));
        }
    }
    found.sort();
    Ok(found)
}

/// The intact records at the start of `bytes`, and how many bytes follow them.
fn parse(mut bytes: &[u8]) -> (Vec<Logged>, usize) {
    let mut records = Vec::new();
    while let Some(record) = next_record(&mut bytes) {
        records.push(record);
    }
    (records, bytes.len())
}

fn next_record(bytes: &mut &[u8]) -> Option<Logged> {
    let len = usize::try_from(u32::from_le_bytes(bytes.get(..4)?.try_into().ok()?)).ok()?;
    let sum = u64::from_le_bytes(bytes.get(4..RECORD_HEADER)?.try_into().ok()?);
    let payload = bytes.get(RECORD_HEADER..RECORD_HEADER.checked_add(len)?)?;
    if xxh3_64(payload) != sum {
        return None;
    }
    let seq = u64::from_le_bytes(payload.get(..8)?.try_into().ok()?);
    let name_len = usize::from(*payload.get(8)?);
    let name = payload.get(PAYLOAD_HEADER..PAYLOAD_HEADER + name_len)?;
    let body = payload.get(PAYLOAD_HEADER + name_len..)?;
    *bytes = bytes.get(RECORD_HEADER + len..)?;
    Some(Logged {
        seq,
        queue: String::from_utf8(name.to_vec()).ok()?,
        body: body.to_vec(),
    })
}

fn create_segment(dir: &Path, first: u64) -> Result<File, EmbeddedError> {
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(segment_name(first)))
        .map_err(EmbeddedError::io)?;
    sync_dir(dir)?;
    Ok(file)
}

impl IngestLog {
    /// Opens the log in `dir` (creating it if needed) and returns it with every intact record,
    /// in sequence order. Appends go to a new segment; the old ones are sealed. New sequence
    /// numbers start above `floor` too: pass the highest number anything outside the log has
    /// recorded (a queue's position), so that numbers never go back even if the log lost its
    /// tail to a power loss or was deleted.
    pub fn open(
        dir: impl AsRef<Path>,
        floor: u64,
    ) -> Result<(IngestLog, Vec<Logged>), EmbeddedError> {
        let dir = dir.as_ref().to_path_buf();
        fs::create_dir_all(&dir).map_err(EmbeddedError::io)?;
        let mut records = Vec::new();
        let mut sealed = Vec::new();
        let mut next = floor.saturating_add(1);
        for (first, path) in segments(&dir)? {
            let bytes = fs::read(&path).map_err(EmbeddedError::io)?;
            let (read, ignored) = parse(&bytes);
            if ignored > 0 {
                tracing::warn!(segment = %path.display(), ignored_bytes = ignored, records = read.len(), "ingest log segment ends in a torn or corrupt record; the bytes from there on are ignored");
            }
            let last = read.last().map_or(first.saturating_sub(1), |r| r.seq);
            next = next.max(last.saturating_add(1));
            if !bytes.is_empty() {
                // Never appended to again, even if it holds no intact record.
                next = next.max(first.saturating_add(1));
            }
            records.extend(read);
            sealed.push((last, path));
        }
        // An empty segment named like the new one is reused rather than listed twice (one
        // with bytes in it never is: `next` is past its first number).
        let active = dir.join(segment_name(next));
        sealed.retain(|(_, path)| *path != active);
        let file = create_segment(&dir, next)?;
        let log = IngestLog {
            dir,
            writer: Mutex::new(Writer {
                file,
                first: next,
                next,
                bytes: 0,
                sealed,
                buf: Vec::new(),
                poisoned: false,
            }),
        };
        Ok((log, records))
    }

    /// Appends a message for `queue`, then calls `then` with its sequence number and the body
    /// while still holding the log: whatever `then` does is ordered like the sequence numbers.
    pub fn append<T>(
        &self,
        queue: &str,
        body: Vec<u8>,
        then: impl FnOnce(u64, Vec<u8>) -> T,
    ) -> Result<T, EmbeddedError> {
        let name_len = u8::try_from(queue.len())
            .map_err(|_| EmbeddedError::InvalidQueueName(queue.to_owned()))?;
        let len = PAYLOAD_HEADER + queue.len() + body.len();
        let len32 = u32::try_from(len).map_err(|_| EmbeddedError::MessageTooLarge {
            size: body.len(),
            max: crate::MAX_MESSAGE_BYTES,
        })?;
        let mut guard = lock(&self.writer);
        let w = &mut *guard;
        if w.poisoned {
            return Err(EmbeddedError::SyncFailed(
                "an earlier write to the ingest log failed".to_owned(),
            ));
        }
        let seq = w.next;
        w.buf.clear();
        w.buf.extend_from_slice(&len32.to_le_bytes());
        w.buf.extend_from_slice(&[0; 8]);
        w.buf.extend_from_slice(&seq.to_le_bytes());
        w.buf.push(name_len);
        w.buf.extend_from_slice(queue.as_bytes());
        w.buf.extend_from_slice(&body);
        let sum = xxh3_64(w.buf.get(RECORD_HEADER..).unwrap_or_default());
        if let Some(slot) = w.buf.get_mut(4..RECORD_HEADER) {
            slot.copy_from_slice(&sum.to_le_bytes());
        }
        if let Err(e) = w.file.write_all(&w.buf) {
            w.poisoned = true;
            return Err(EmbeddedError::io(e));
        }
        w.next += 1;
        w.bytes += w.buf.len() as u64;
        let out = then(seq, body);
        if w.bytes >= SEGMENT_BYTES {
            match create_segment(&self.dir, w.next) {
                Ok(file) => {
                    drop(std::mem::replace(&mut w.file, file));
                    w.sealed.push((seq, self.dir.join(segment_name(w.first))));
                    w.first = w.next;
                    w.bytes = 0;
                }
                // The active segment simply grows; the next append tries again.
                Err(e) => tracing::warn!(error = %e, "could not start a new ingest log segment"),
            }
        }
        Ok(out)
    }

    /// Deletes the sealed segments whose records are all at or below the sequence number
    /// `durable` returns (called while appends wait, so it can read what `append`'s callers
    /// recorded). Returns how many were deleted.
    pub fn release(&self, durable: impl FnOnce() -> u64) -> usize {
        let mut w = lock(&self.writer);
        if w.sealed.is_empty() {
            return 0;
        }
        let through = durable();
        let mut deleted = 0;
        w.sealed.retain(|(last, path)| {
            if *last > through {
                return true;
            }
            match fs::remove_file(path) {
                Ok(()) => {
                    deleted += 1;
                    false
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "could not delete an ingest log segment");
                    true
                }
            }
        });
        deleted
    }

    /// Sealed segments not released yet.
    pub fn sealed(&self) -> usize {
        lock(&self.writer).sealed.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(dir: &Path) -> (IngestLog, Vec<Logged>) {
        match IngestLog::open(dir, 0) {
            Ok(opened) => opened,
            Err(e) => panic!("open: {e}"),
        }
    }

    fn append(log: &IngestLog, queue: &str, body: &[u8]) -> u64 {
        match log.append(queue, body.to_vec(), |seq, _| seq) {
            Ok(seq) => seq,
            Err(e) => panic!("append: {e}"),
        }
    }

    fn temp() -> tempfile::TempDir {
        match tempfile::tempdir() {
            Ok(dir) => dir,
            Err(e) => panic!("tempdir: {e}"),
        }
    }

    /// The newest segment's path.
    fn newest(dir: &Path) -> PathBuf {
        match segments(dir).map(|s| s.into_iter().last()) {
            Ok(Some((_, path))) => path,
            _ => panic!("no segment"),
        }
    }

    /// Changes a file's bytes in place (what a crash or a bad disk leaves behind).
    fn rewrite(path: &Path, change: impl FnOnce(&mut Vec<u8>)) {
        let mut bytes = match fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) => panic!("read: {e}"),
        };
        change(&mut bytes);
        if let Err(e) = fs::write(path, &bytes) {
            panic!("write: {e}");
        }
    }

    fn summary(records: &[Logged]) -> Vec<(u64, &str, &[u8])> {
        records
            .iter()
            .map(|r| (r.seq, r.queue.as_str(), r.body.as_slice()))
            .collect()
    }

    #[test]
    fn records_come_back_in_order_and_numbering_continues_after_a_reopen() {
        let dir = temp();
        let (log, records) = open(dir.path());
        assert!(records.is_empty());
        assert_eq!(append(&log, "StateQueue", b"one"), 1);
        assert_eq!(append(&log, "Other", b""), 2);
        assert_eq!(append(&log, "StateQueue", b"three"), 3);
        drop(log);

        let (log, records) = open(dir.path());
        assert_eq!(
            summary(&records),
            vec![
                (1, "StateQueue", &b"one"[..]),
                (2, "Other", &b""[..]),
                (3, "StateQueue", &b"three"[..]),
            ]
        );
        assert_eq!(append(&log, "StateQueue", b"four"), 4);
        drop(log);
        let (_, records) = open(dir.path());
        assert_eq!(records.len(), 4);
    }

    #[test]
    fn a_torn_or_corrupt_record_ends_its_segment() {
        let dir = temp();
        let (log, _) = open(dir.path());
        append(&log, "q", b"kept");
        append(&log, "q", b"torn");
        drop(log);
        let path = newest(dir.path());
        // Killed in the middle of the second write.
        rewrite(&path, |bytes| bytes.truncate(bytes.len() - 2));
        let (log, records) = open(dir.path());
        assert_eq!(summary(&records), vec![(1, "q", &b"kept"[..])]);
        // The torn record was never acknowledged: its number goes to the next message.
        assert_eq!(append(&log, "q", b"next"), 2);
        drop(log);

        // A flipped bit in an intact record fails its checksum: that segment ends there, the
        // next segment is read as usual.
        rewrite(&path, |bytes| {
            let Some(at) = bytes.windows(4).position(|w| w == b"kept") else {
                panic!("record not found");
            };
            if let Some(byte) = bytes.get_mut(at) {
                *byte ^= 1;
            }
        });
        let (_, records) = open(dir.path());
        assert_eq!(summary(&records), vec![(2, "q", &b"next"[..])]);
    }

    #[test]
    fn sealed_segments_go_once_released_and_never_before() {
        let dir = temp();
        let (log, _) = open(dir.path());
        append(&log, "q", b"first run");
        drop(log);
        // Reopening seals the old segment.
        let (log, records) = open(dir.path());
        assert_eq!(records.len(), 1);
        assert_eq!(log.sealed(), 1);
        append(&log, "q", b"second run");
        assert_eq!(log.release(|| 0), 0, "nothing is durable elsewhere yet");
        assert_eq!(log.sealed(), 1);
        assert_eq!(log.release(|| 1), 1);
        assert_eq!(log.sealed(), 0);
        drop(log);
        let (_, records) = open(dir.path());
        assert_eq!(summary(&records), vec![(2, "q", &b"second run"[..])]);
    }

    #[test]
    fn a_full_segment_is_sealed_and_the_next_one_continues_the_numbering() {
        let dir = temp();
        let (log, _) = open(dir.path());
        let body = vec![7_u8; 1 << 20];
        let per_segment = usize::try_from(SEGMENT_BYTES >> 20).unwrap_or(16);
        for _ in 0..=per_segment {
            append(&log, "q", &body);
        }
        assert_eq!(log.sealed(), 1);
        let last = append(&log, "q", b"small");
        // The sealed segment ends with record `last - 2` (the 16th of 1 MiB).
        assert_eq!(log.release(|| last - 3), 0);
        assert_eq!(log.release(|| last - 2), 1);
        drop(log);
        let (_, records) = open(dir.path());
        let seqs: Vec<u64> = records.iter().map(|r| r.seq).collect();
        assert_eq!(
            seqs,
            vec![last - 1, last],
            "only the active segment is left"
        );
    }

    #[test]
    fn a_segment_with_only_a_torn_record_is_not_appended_to_again() {
        let dir = temp();
        let (log, _) = open(dir.path());
        append(&log, "q", b"torn");
        drop(log);
        rewrite(&newest(dir.path()), |bytes| bytes.truncate(bytes.len() - 1));
        let (log, records) = open(dir.path());
        assert!(records.is_empty());
        let seq = append(&log, "q", b"after");
        drop(log);
        let (_, records) = open(dir.path());
        assert_eq!(summary(&records), vec![(seq, "q", &b"after"[..])]);
    }

    #[test]
    fn numbering_starts_above_the_floor() {
        let dir = temp();
        let Ok((log, _)) = IngestLog::open(dir.path(), 41) else {
            panic!("open");
        };
        assert_eq!(append(&log, "q", b"x"), 42);
        drop(log);
        // A floor below what the log holds changes nothing.
        let Ok((log, _)) = IngestLog::open(dir.path(), 7) else {
            panic!("open");
        };
        assert_eq!(append(&log, "q", b"y"), 43);
    }
}
