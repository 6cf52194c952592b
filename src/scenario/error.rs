//! Errors in what the user gave us: they name the file, the key path, the line and
//! what was expected, and make the process exit with code 2.

use std::fmt;

/// A mistake in user input (scenario file, `--set`, flags, data files).
#[derive(Debug, Clone, PartialEq)]
pub struct InputError {
    /// The file, or the command-line argument (`--set ...`, `--seed ...`), the mistake is in.
    pub file: Option<String>,
    /// Dotted key path, e.g. `network.topology.degree` or `plot[0].y`.
    pub key: Option<String>,
    /// The line of the file the mistake is on, counted from 1.
    pub line: Option<usize>,
    /// What is wrong and what was expected instead.
    pub message: String,
}

impl InputError {
    /// An error saying `message`, not yet pointed at a file, key or line.
    pub fn new(message: impl Into<String>) -> Self {
        InputError { file: None, key: None, line: None, message: message.into() }
    }
    /// Names the file or command-line argument the mistake is in.
    pub fn file(mut self, file: impl Into<String>) -> Self {
        self.file = Some(file.into());
        self
    }
    /// Names the key path the mistake is about; an empty path names none.
    pub fn key(mut self, key: impl Into<String>) -> Self {
        let k = key.into();
        self.key = (!k.is_empty()).then_some(k);
        self
    }
    /// Points the error at a line of the file, when it is known.
    pub fn line(mut self, line: Option<usize>) -> Self {
        self.line = line;
        self
    }
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.file, self.line, &self.key) {
            (Some(file), Some(line), _) => write!(f, "{file}, line {line}")?,
            (Some(file), None, _) => write!(f, "{file}")?,
            (None, _, Some(_)) => write!(f, "input")?,
            // The message names what it is about (a flag, a folder).
            (None, _, None) => return write!(f, "{}", self.message),
        }
        if let Some(key) = &self.key {
            write!(f, ", key `{key}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for InputError {}
