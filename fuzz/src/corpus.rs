//! Seed corpora: the hand-written edge cases in `fuzz/corpus/<target>/`
//! (committed, one input per file) plus the seeds each target builds in
//! code ([`Target::built_seeds`]), mostly from the test fixtures, read
//! through `tickcast_testkit::fixtures` so they come from wherever the
//! fixtures live.

use std::io;
use std::path::{Path, PathBuf};

use crate::Target;

/// The committed corpus directory, `fuzz/corpus`.
pub fn default_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus")
}

/// Every seed of `target`: the files of `<dir>/<target>/` (sorted by name,
/// so runs are repeatable), then its built seeds. A missing directory is
/// an error: a target without its corpus would silently fuzz less.
pub fn seeds(target: &Target, dir: &Path) -> io::Result<Vec<Vec<u8>>> {
    let mut seeds = read_dir(&dir.join(target.name))?;
    seeds.extend((target.built_seeds)());
    Ok(seeds)
}

/// The contents of every file in `dir`, sorted by file name.
pub fn read_dir(dir: &Path) -> io::Result<Vec<Vec<u8>>> {
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| with_path(e, dir))? {
        let path = entry?.path();
        if path.is_file() {
            paths.push(path);
        }
    }
    paths.sort();
    paths
        .iter()
        .map(|p| std::fs::read(p).map_err(|e| with_path(e, p)))
        .collect()
}

/// Writes `seeds` into `dir` (created if needed) as `seed-<n>` files, for
/// engines that read a corpus directory (libFuzzer). Returns how many.
pub fn export(seeds: &[Vec<u8>], dir: &Path) -> io::Result<usize> {
    std::fs::create_dir_all(dir).map_err(|e| with_path(e, dir))?;
    for (i, seed) in seeds.iter().enumerate() {
        let path = dir.join(format!("seed-{i:05}"));
        std::fs::write(&path, seed).map_err(|e| with_path(e, &path))?;
    }
    Ok(seeds.len())
}

fn with_path(error: io::Error, path: &Path) -> io::Error {
    io::Error::new(error.kind(), format!("{}: {error}", path.display()))
}
