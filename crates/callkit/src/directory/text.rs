//! The plain-text form of a directory load, for people and scripts.
//!
//! Block lists come from spreadsheets and carrier exports, so numbers may be
//! written any way [`PhoneNumber::parse`] accepts, and every error names the
//! line to fix. A list can run to tens of millions of lines, so lines are
//! read into one reused buffer and a blocking line allocates nothing.
//!
//! ```text
//! # comment
//! +1 (800) 555-1234          block this number
//! +1 415 555 0100,Pizza Place    label this number
//! -18005551234               (incremental) stop blocking it
//! -14155550100,              (incremental) remove its label
//! ```

use std::io::BufRead;
use std::sync::Arc;

use crate::handle::PhoneNumber;

use super::error::{TextError, TextErrorKind};
use super::loader::DirectoryLoader;

/// What a text load did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TextSummary {
    pub lines: usize,
    pub blocking_added: usize,
    pub identification_added: usize,
    pub removals: usize,
}

impl DirectoryLoader {
    /// Feeds the loader from the text format, stopping at the first bad line.
    pub fn extend_from_text(&mut self, mut reader: impl BufRead) -> Result<TextSummary, TextError> {
        let mut summary = TextSummary::default();
        let mut buffer = Vec::with_capacity(128);
        loop {
            buffer.clear();
            let read = reader
                .read_until(b'\n', &mut buffer)
                .map_err(|e| TextError {
                    line: summary.lines + 1,
                    kind: TextErrorKind::Io(Arc::new(e)),
                })?;
            if read == 0 {
                return Ok(summary);
            }
            summary.lines += 1;
            self.apply_line(&buffer, &mut summary)
                .map_err(|kind| TextError {
                    line: summary.lines,
                    kind,
                })?;
        }
    }

    fn apply_line(&mut self, line: &[u8], summary: &mut TextSummary) -> Result<(), TextErrorKind> {
        let line = line.trim_ascii();
        if line.is_empty() || line[0] == b'#' {
            return Ok(());
        }
        let (removal, line) = match line.strip_prefix(b"-") {
            Some(rest) => (true, rest),
            None => (false, line),
        };
        let (number, label) = match line.iter().position(|&b| b == b',') {
            Some(comma) => (&line[..comma], Some(line[comma + 1..].trim_ascii())),
            None => (line, None),
        };
        let number = parse_number(number)?;
        let directory = TextErrorKind::Directory;
        match (removal, label) {
            (false, None) => {
                self.add_blocking_entry(number).map_err(directory)?;
                summary.blocking_added += 1;
            }
            (false, Some(label)) => {
                if label.is_empty() {
                    return Err(TextErrorKind::EmptyLabel);
                }
                let label = std::str::from_utf8(label).map_err(|_| TextErrorKind::InvalidUtf8)?;
                self.add_identification_entry(number, label)
                    .map_err(directory)?;
                summary.identification_added += 1;
            }
            (true, None) => {
                self.remove_blocking_entry(number).map_err(directory)?;
                summary.removals += 1;
            }
            (true, Some(_)) => {
                self.remove_identification_entry(number)
                    .map_err(directory)?;
                summary.removals += 1;
            }
        }
        Ok(())
    }
}

fn parse_number(bytes: &[u8]) -> Result<PhoneNumber, TextErrorKind> {
    // Machine-written lists are bare digits; skip the general parser for them.
    if (1..=15).contains(&bytes.len()) && bytes.iter().all(u8::is_ascii_digit) {
        let value = bytes
            .iter()
            .fold(0i64, |v, &b| v * 10 + i64::from(b - b'0'));
        if let Some(number) = PhoneNumber::from_e164(value) {
            return Ok(number);
        }
    }
    let text = std::str::from_utf8(bytes).map_err(|_| TextErrorKind::InvalidUtf8)?;
    PhoneNumber::parse(text).map_err(TextErrorKind::Number)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::{CallDirectoryError, DirectoryEntry};

    fn n(value: i64) -> PhoneNumber {
        PhoneNumber::from_e164(value).unwrap()
    }

    #[test]
    fn reads_both_kinds_comments_and_human_numbers() {
        let text =
            "# spam list\r\n\n+1 (800) 555-1234\n  18005559999 \n+1 415 555 0100, Pizza, Inc.\n";
        let mut loader = DirectoryLoader::full();
        let summary = loader.extend_from_text(text.as_bytes()).unwrap();
        assert_eq!(
            summary,
            TextSummary {
                lines: 5,
                blocking_added: 2,
                identification_added: 1,
                removals: 0
            }
        );
        let snapshot = loader.finish().unwrap();
        assert_eq!(snapshot.lookup(n(18005551234)), DirectoryEntry::Blocked);
        assert_eq!(
            snapshot.lookup(n(14155550100)),
            DirectoryEntry::Identified("Pizza, Inc.".into())
        );
    }

    #[test]
    fn errors_name_the_line() {
        let mut loader = DirectoryLoader::full();
        let error = loader
            .extend_from_text("18005551234\n18005550000\n".as_bytes())
            .unwrap_err();
        assert_eq!(error.line, 2);
        assert_eq!(
            error.to_string(),
            "directory line 2: 18005550000 is not greater than 18005551234 — entries must be in ascending order (EntriesOutOfOrder)"
        );
    }

    #[test]
    fn bad_numbers_and_empty_labels_are_rejected() {
        let error = DirectoryLoader::full()
            .extend_from_text("# ok\n1800-FLOWERS\n".as_bytes())
            .unwrap_err();
        assert_eq!(error.line, 2);
        assert!(matches!(error.kind, TextErrorKind::Number(_)));

        let error = DirectoryLoader::full()
            .extend_from_text("18005551234,  \n".as_bytes())
            .unwrap_err();
        assert!(matches!(error.kind, TextErrorKind::EmptyLabel));
    }

    #[test]
    fn removal_lines_need_an_incremental_load() {
        let error = DirectoryLoader::full()
            .extend_from_text("-18005551234\n".as_bytes())
            .unwrap_err();
        assert!(matches!(
            error.kind,
            TextErrorKind::Directory(CallDirectoryError::UnexpectedIncrementalRemoval { .. })
        ));

        let mut base = DirectoryLoader::full();
        base.extend_from_text("18005551234\n14155550100,Pizza\n".as_bytes())
            .unwrap();
        let mut loader = DirectoryLoader::incremental(Arc::new(base.finish().unwrap()));
        let summary = loader
            .extend_from_text("-18005551234\n-14155550100,\n".as_bytes())
            .unwrap();
        assert_eq!(summary.removals, 2);
        assert!(loader.finish().unwrap().is_empty());
    }
}
