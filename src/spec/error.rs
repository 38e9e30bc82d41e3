//! Plan-file errors that point at the exact place in the user's file.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct SpecError {
    pub file: PathBuf,
    /// 1-based line and column, when the place is known.
    pub position: Option<(usize, usize)>,
    /// The offending line of the file, for the excerpt.
    pub excerpt: Option<String>,
    pub message: String,
    pub help: Option<String>,
}

impl SpecError {
    pub fn at(
        file: &Path,
        source: &str,
        span: Option<Range<usize>>,
        message: impl Into<String>,
    ) -> Self {
        let (position, excerpt) = match span {
            Some(span) => {
                let (line, col) = line_col(source, span.start);
                let text = source.lines().nth(line - 1).unwrap_or("").to_string();
                (Some((line, col)), Some(text))
            }
            None => (None, None),
        };
        SpecError {
            file: file.to_path_buf(),
            position,
            excerpt,
            message: message.into(),
            help: None,
        }
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// `file:line:col`, or just the file.
    pub fn location(&self) -> String {
        match self.position {
            Some((l, c)) => format!("{}:{l}:{c}", self.file.display()),
            None => self.file.display().to_string(),
        }
    }
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.message)?;
        write!(f, "  --> {}", self.location())?;
        if let (Some((line, col)), Some(text)) = (self.position, &self.excerpt) {
            let gutter = line.to_string().len();
            write!(
                f,
                "\n{:gutter$} |\n{line} | {text}\n{:gutter$} | {:>col$}",
                "", "", "^"
            )?;
        }
        if let Some(help) = &self.help {
            write!(f, "\nhelp: {help}")?;
        }
        Ok(())
    }
}

impl std::error::Error for SpecError {}

/// Every error found in the plan files (at least one), sorted by file, line and column.
#[derive(Debug, Clone)]
pub struct SpecErrors(pub Vec<SpecError>);

impl SpecErrors {
    /// Sorted by place, each error once.
    pub fn new(mut errors: Vec<SpecError>) -> Self {
        sort(&mut errors);
        SpecErrors(errors)
    }
}

/// Sorts problems by file, then line and column (file-wide ones first), each once.
pub fn sort(errors: &mut Vec<SpecError>) {
    errors
        .sort_by(|a, b| (&a.file, a.position, &a.message).cmp(&(&b.file, b.position, &b.message)));
    errors.dedup_by(|a, b| a.file == b.file && a.position == b.position && a.message == b.message);
}

impl From<SpecError> for SpecErrors {
    fn from(e: SpecError) -> Self {
        SpecErrors(vec![e])
    }
}

/// As a user sees them: `error: ` before each but the first (the caller prints that one's),
/// then a count when there are several.
impl fmt::Display for SpecErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                write!(f, "\n\nerror: ")?;
            }
            write!(f, "{e}")?;
        }
        if self.0.len() > 1 {
            write!(f, "\n\n{} errors in the plan files", self.0.len())?;
        }
        Ok(())
    }
}

impl std::error::Error for SpecErrors {}

/// What checking the plan files found: errors stop a command, warnings are shown.
#[derive(Debug, Default)]
pub struct Diagnostics {
    pub errors: Vec<SpecError>,
    pub warnings: Vec<SpecError>,
}

impl Diagnostics {
    /// The errors as one failure, if there are any.
    pub fn into_result(self) -> Result<Vec<SpecError>, SpecErrors> {
        if self.errors.is_empty() {
            Ok(self.warnings)
        } else {
            Err(SpecErrors::new(self.errors))
        }
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(source: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(source.len());
    let before = &source[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let col = source[line_start..offset].chars().count() + 1;
    (line, col)
}

/// The candidate closest to `word` by edit distance, if it is plausibly a typo.
pub fn nearest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let word_l = word.to_ascii_lowercase();
    candidates
        .into_iter()
        .map(|c| (levenshtein(&word_l, &c.to_ascii_lowercase()), c))
        .filter(|(d, c)| *d <= (c.len().max(word.len()) / 3).max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

pub fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_from_one() {
        let src = "a = 1\nbb = 2\n";
        assert_eq!(line_col(src, 0), (1, 1));
        assert_eq!(line_col(src, 6), (2, 1));
        assert_eq!(line_col(src, 8), (2, 3));
    }

    #[test]
    fn nearest_suggests_typos_only() {
        let keys = ["max_session_duration", "description", "path"];
        assert_eq!(
            nearest("max_sesion_duration", keys),
            Some("max_session_duration")
        );
        assert_eq!(nearest("descripton", keys), Some("description"));
        assert_eq!(nearest("zzzzzzzz", keys), None);
    }

    #[test]
    fn display_shows_location_excerpt_and_help() {
        let src = "[role.x]\nfoo = 1\n";
        let e = SpecError::at(Path::new("p.toml"), src, Some(9..12), "unknown key `foo`")
            .with_help("did you mean `path`?");
        let text = e.to_string();
        assert!(text.contains("p.toml:2:1"), "{text}");
        assert!(text.contains("2 | foo = 1"), "{text}");
        assert!(text.contains("help: did you mean `path`?"), "{text}");
    }
}
