//! mimalloc's arenas committed on demand (feature `mimalloc`, Linux).
//!
//! mimalloc commits its arenas eagerly on Linux by default, which keeps
//! pages resident that glibc's malloc would not: about 10 MiB more at
//! start and 0.6-1 KiB more per idle connection (docs/benchmarks.md,
//! "Allocator"). Committing on demand gives that back for a few percent of
//! the CPU it saves. The option must be set before mimalloc reserves its
//! first arena, which happens at the process's first Rust allocation,
//! before `main`: hence a constructor (`.init_array`), which runs before
//! the Rust runtime starts and allocates nothing.

use libmimalloc_sys::{mi_option_get, mi_option_set, mi_option_t};

/// `mi_option_arena_eager_commit` in mimalloc.h's `mi_option_e` (v3, as
/// libmimalloc-sys 0.1.49 builds it); the crate has no constant for it.
const ARENA_EAGER_COMMIT: mi_option_t = 4;
/// Its default: eager on systems that overcommit (Linux).
const EAGER_IF_OVERCOMMIT: std::os::raw::c_long = 2;

#[used]
#[link_section = ".init_array"]
static COMMIT_ON_DEMAND: extern "C" fn() = commit_on_demand;

/// Turns eager arena commits off unless `MIMALLOC_ARENA_EAGER_COMMIT` in
/// the environment asks for something other than the default.
extern "C" fn commit_on_demand() {
    // SAFETY: both only read or store an option value (mi_option_get reads
    // the environment once); a constructor runs before any other thread.
    unsafe {
        if mi_option_get(ARENA_EAGER_COMMIT) == EAGER_IF_OVERCOMMIT {
            mi_option_set(ARENA_EAGER_COMMIT, 0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arenas_are_committed_on_demand() {
        // SAFETY: reads an option value.
        let value = unsafe { mi_option_get(ARENA_EAGER_COMMIT) };
        assert_eq!(value, 0);
    }
}
