//! The byte-level mutator of the stable engine: AFL-style "havoc" edits
//! over a seed, with a per-target dictionary and splicing of two seeds.
//!
//! Structure comes from the seeds and from [`crate::gen`]; this only has
//! to disturb valid inputs in the ways parsers get wrong (a byte changed,
//! a chunk cut or repeated, a number made huge, a keyword moved).

use rand::seq::IndexedRandom;
use rand::Rng;

/// Bytes that mean something to the parsers under test.
const INTERESTING_BYTES: [u8; 20] = [
    0x00, 0xff, 0x7f, 0x80, 0xc3, 0xe2, b'"', b'\\', b'{', b'}', b'[', b']', b',', b':', b'%',
    b'-', b'+', b'0', b'9', b'&',
];

/// Digit strings that break integer parsing and arithmetic.
const BIG_NUMBERS: [&str; 8] = [
    "0",
    "18446744073709551615",
    "18446744073709551616",
    "9223372036854775808",
    "9223372036854775807",
    "99999999999999999999999",
    "1e400",
    "-1",
];

/// Applies 1 to 8 random edits to `input`, keeping it at most `max_len`
/// bytes. `dictionary` and `other` (another seed, for splicing) feed the
/// edits that insert text.
pub fn havoc<R: Rng>(
    rng: &mut R,
    input: &mut Vec<u8>,
    dictionary: &[&str],
    other: &[u8],
    max_len: usize,
) {
    let edits = 1 << rng.random_range(0..4);
    for _ in 0..edits {
        edit(rng, input, dictionary, other, max_len);
        // Bounded after every edit, not once at the end: repeated chunks
        // compound (200x per edit, up to 8 edits) past any memory.
        input.truncate(max_len);
    }
}

fn edit<R: Rng>(
    rng: &mut R,
    input: &mut Vec<u8>,
    dictionary: &[&str],
    other: &[u8],
    max_len: usize,
) {
    let len = input.len();
    match rng.random_range(0..12) {
        // Flip one bit.
        0 if len > 0 => {
            let at = rng.random_range(0..len);
            input[at] ^= 1 << rng.random_range(0..8);
        }
        // Set a byte to a random or an interesting value.
        1 if len > 0 => {
            let at = rng.random_range(0..len);
            input[at] = rng.random();
        }
        2 if len > 0 => {
            let at = rng.random_range(0..len);
            input[at] = *INTERESTING_BYTES.choose(rng).unwrap_or(&0);
        }
        // Cut a chunk.
        3 if len > 0 => {
            let (start, end) = range(rng, len);
            input.drain(start..end);
        }
        // Repeat a chunk (grows brackets into deep nesting).
        4 if len > 0 => {
            let (start, end) = range(rng, len);
            let chunk = input[start..end].to_vec();
            let times = *[1usize, 2, 8, 64, 200].choose(rng).unwrap_or(&1);
            let at = rng.random_range(start..=len);
            let repeated: Vec<u8> = chunk
                .iter()
                .copied()
                .cycle()
                .take((chunk.len() * times).min(max_len))
                .collect();
            input.splice(at..at, repeated);
        }
        // Insert or overwrite with a dictionary token.
        5 | 6 if !dictionary.is_empty() => {
            let token = dictionary.choose(rng).map_or(&[][..], |t| t.as_bytes());
            let at = rng.random_range(0..=len);
            if rng.random_bool(0.5) {
                input.splice(at..at, token.iter().copied());
            } else {
                let end = (at + token.len()).min(len);
                input.splice(at..end, token.iter().copied());
            }
        }
        // Replace a run of digits with a huge or odd number.
        7 => replace_number(rng, input),
        // Splice: our head, the other seed's tail.
        8 if !other.is_empty() => {
            let cut = rng.random_range(0..=len);
            let from = rng.random_range(0..other.len());
            input.truncate(cut);
            input.extend_from_slice(&other[from..]);
        }
        // Insert random bytes.
        9 => {
            let at = rng.random_range(0..=len);
            let count = rng.random_range(1..=16);
            let bytes: Vec<u8> = (0..count).map(|_| rng.random()).collect();
            input.splice(at..at, bytes);
        }
        // Swap two bytes.
        10 if len > 1 => {
            let a = rng.random_range(0..len);
            let b = rng.random_range(0..len);
            input.swap(a, b);
        }
        // Truncate.
        _ if len > 0 => input.truncate(rng.random_range(0..len)),
        _ => input.push(rng.random()),
    }
}

/// A non-empty `start..end` within `0..len`, short more often than long.
fn range<R: Rng>(rng: &mut R, len: usize) -> (usize, usize) {
    let start = rng.random_range(0..len);
    let longest = (len - start).min(*[4usize, 16, 256, usize::MAX].choose(rng).unwrap_or(&4));
    let end = start + rng.random_range(1..=longest);
    (start, end)
}

fn replace_number<R: Rng>(rng: &mut R, input: &mut Vec<u8>) {
    let digits: Vec<usize> = (0..input.len())
        .filter(|&i| input[i].is_ascii_digit() && (i == 0 || !input[i - 1].is_ascii_digit()))
        .collect();
    let Some(&start) = digits.choose(rng) else {
        return;
    };
    let end = input[start..]
        .iter()
        .position(|b| !b.is_ascii_digit())
        .map_or(input.len(), |n| start + n);
    let number = BIG_NUMBERS.choose(rng).copied().unwrap_or("0");
    input.splice(start..end, number.bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn havoc_changes_inputs_within_the_length_limit() {
        let mut rng = StdRng::seed_from_u64(7);
        let seed = br#"{"op":"subscribe","id":"s1","since":"5-7"}"#.to_vec();
        let mut changed = 0;
        for _ in 0..1000 {
            let mut input = seed.clone();
            havoc(&mut rng, &mut input, &["\"op\"", "%2C"], b"[1,2]", 64);
            assert!(input.len() <= 64);
            changed += usize::from(input != seed);
        }
        assert!(changed > 900, "only {changed} of 1000 changed");
    }

    #[test]
    fn one_edit_grows_an_input_by_a_bounded_amount() {
        // Regression: chunk repeats used to compound across the edits of
        // one havoc round until an allocation of 37 GB aborted the run.
        let mut rng = StdRng::seed_from_u64(3);
        let other = b"[1,2,3]";
        for _ in 0..20_000 {
            let mut input = vec![b'['; 256];
            edit(&mut rng, &mut input, &["\"op\""], other, 256);
            assert!(input.len() <= 2 * 256 + 16, "grew to {}", input.len());
        }
    }

    #[test]
    fn numbers_are_replaced_whole() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut seen_big = false;
        for _ in 0..200 {
            let mut input = b"x-12-y".to_vec();
            replace_number(&mut rng, &mut input);
            let text = String::from_utf8(input).unwrap();
            assert!(text.starts_with("x-") && text.ends_with("-y"), "{text}");
            seen_big |= text.contains("18446744073709551616");
        }
        assert!(seen_big);
    }
}
