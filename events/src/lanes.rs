//! BLAKE3 of many short inputs at once, one input per SIMD lane: the record hashes of an
//! export, and the leaves and nodes of its Merkle tree, for verifiers that check millions of
//! records.
//!
//! A record's hash input (`prev ‖ JCS(body)`, a few hundred bytes) is a single BLAKE3 chunk,
//! and one chunk is a chain of compressions: the `blake3` crate can only run it one
//! compression at a time (its SIMD parallelism is across the chunks of one long input, which
//! a record does not have). Here [`LANES`] inputs with the same number of blocks run their
//! compressions together in AVX2 registers, each 32-bit word of the state a vector of one word
//! per input, so the CPU does eight compressions for the price of about two. Without AVX2
//! (checked at run time), or off x86-64, and for inputs longer than one chunk (1 KiB), each
//! input is hashed by the `blake3` crate.
//!
//! Verifiers use the record hashes only as a fast *confirmation*: they compare the result with
//! the hash a record states and, on any difference, re-check the record with
//! [`crate::record_hash`] (the `blake3` crate). The tests hold every mode to `blake3` on every
//! input length a chunk can have.

use crate::chain::{event_context_key, Hash};

/// Inputs hashed side by side.
pub const LANES: usize = 8;
/// BLAKE3's block and chunk sizes in bytes; inputs longer than a chunk go to `blake3` itself.
const BLOCK_BYTES: usize = 64;
const CHUNK_BYTES: usize = 1024;
const BLOCKS_PER_CHUNK_MAX: usize = CHUNK_BYTES / BLOCK_BYTES;

/// Which BLAKE3 function to compute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `blake3::hash`: the Merkle tree's leaves and nodes (DESIGN §6).
    Hash,
    /// `BLAKE3.derive_key("fundledger event v1", input)`: [`crate::record_hash`] (DESIGN §5).
    RecordHash,
}

/// One input, given in two parts that are hashed as one: `head ‖ tail` (a record's `prev`
/// and body; a Merkle node's prefix byte and children).
#[derive(Clone, Copy, Debug)]
pub struct Input<'a> {
    pub head: &'a [u8],
    pub tail: &'a [u8],
}

impl Input<'_> {
    fn len(&self) -> usize {
        self.head.len() + self.tail.len()
    }
}

/// The BLAKE3 `mode` hash of every input, into `out` (same length, same order).
pub fn hash_many(mode: Mode, inputs: &[Input<'_>], out: &mut [Hash]) {
    Lanes::default().hash(mode, inputs.len(), |index| inputs[index], out);
}

/// [`hash_many`] with its working memory kept between calls, for callers that hash batch
/// after batch (a fresh allocation per batch costs page faults with some allocators).
#[derive(Debug, Default)]
pub struct Lanes {
    /// Indices of the inputs of each length in blocks.
    by_blocks: [Vec<usize>; BLOCKS_PER_CHUNK_MAX + 1],
}

impl Lanes {
    /// The BLAKE3 `mode` hash of inputs `0..count` (`input(index)` gives each), into `out`.
    pub fn hash<'a>(
        &mut self,
        mode: Mode,
        count: usize,
        input: impl Fn(usize) -> Input<'a>,
        out: &mut [Hash],
    ) {
        debug_assert_eq!(count, out.len());
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                self.hash_avx2(mode, count, input, out);
                return;
            }
        }
        for (index, hash) in out.iter_mut().enumerate().take(count) {
            *hash = hash_one(mode, &input(index));
        }
    }

    #[cfg(target_arch = "x86_64")]
    fn hash_avx2<'a>(
        &mut self,
        mode: Mode,
        count: usize,
        input: impl Fn(usize) -> Input<'a>,
        out: &mut [Hash],
    ) {
        // Lanes run in lockstep, so group the inputs by their number of blocks (an empty
        // input is one empty block).
        for indices in &mut self.by_blocks {
            indices.clear();
        }
        for (index, hash) in out.iter_mut().enumerate().take(count) {
            let input = input(index);
            if input.len() > CHUNK_BYTES {
                *hash = hash_one(mode, &input);
            } else {
                self.by_blocks[input.len().div_ceil(BLOCK_BYTES).max(1)].push(index);
            }
        }
        // Filled in place, group after group (building fresh arrays costs a copy each).
        let mut lane_inputs = [Input {
            head: &[],
            tail: &[],
        }; LANES];
        let mut hashes = [Hash::ZERO; LANES];
        for (blocks, indices) in self.by_blocks.iter().enumerate().skip(1) {
            for group in indices.chunks(LANES) {
                // A short last group repeats its first input in the spare lanes.
                for (lane, lane_input) in lane_inputs.iter_mut().enumerate() {
                    *lane_input = input(group[lane.min(group.len() - 1)]);
                }
                // SAFETY: `hash` calls this only when the CPU has AVX2, which is all that
                // `avx2::hash_group` needs; it reads only inside the slices it is given.
                unsafe { avx2::hash_group(mode, &lane_inputs, blocks, &mut hashes) };
                for (&index, hash) in group.iter().zip(&hashes) {
                    out[index] = *hash;
                }
            }
        }
    }
}

/// One input, by the `blake3` crate.
fn hash_one(mode: Mode, input: &Input<'_>) -> Hash {
    let mut hasher = match mode {
        Mode::Hash => blake3::Hasher::new(),
        Mode::RecordHash => {
            use blake3::hazmat::HasherExt;
            blake3::Hasher::new_from_context_key(event_context_key())
        }
    };
    hasher.update(input.head);
    hasher.update(input.tail);
    Hash(*hasher.finalize().as_bytes())
}

/// Room to assemble one block: a block, and as much zero padding after it.
type Scratch = [u8; 2 * BLOCK_BYTES];

/// Block `block` of `head ‖ tail`, zero-padded: the first [`BLOCK_BYTES`] of the returned
/// slice. Also returns how many input bytes the block holds. Straight from the tail when the
/// block lies inside it; else assembled in `scratch`, with copies of fixed sizes for the
/// shapes verifiers hash (a record's 32-byte prev before its body, a Merkle prefix byte
/// before 32 or 64 bytes), because copies of variable length cost a call each.
#[inline(always)]
fn block_bytes<'a>(scratch: &'a mut Scratch, input: Input<'a>, block: usize) -> (&'a [u8], usize) {
    let (head, tail) = (input.head, input.tail);
    let start = block * BLOCK_BYTES;
    let len = input.len().saturating_sub(start).min(BLOCK_BYTES);
    if start >= head.len() {
        let tail_start = start - head.len();
        if let Some(inside) = tail.get(tail_start..tail_start + BLOCK_BYTES) {
            return (inside, BLOCK_BYTES);
        }
        if tail.len() >= BLOCK_BYTES {
            // The last, partial block of a long tail: the 64 bytes that end the tail, then
            // zeros; the block is the window that starts at its first byte.
            scratch[..BLOCK_BYTES].copy_from_slice(&tail[tail.len() - BLOCK_BYTES..]);
            scratch[BLOCK_BYTES..].fill(0);
            let offset = BLOCK_BYTES - len;
            return (&scratch[offset..], len);
        }
    }
    if block == 0 {
        if let (Ok(prev), Some(body)) = (<&[u8; 32]>::try_from(head), tail.get(..32)) {
            // A record's first block: prev, then the body's first 32 bytes.
            scratch[..32].copy_from_slice(prev);
            scratch[32..BLOCK_BYTES].copy_from_slice(body);
            return (&scratch[..], len);
        }
        if let [prefix] = head {
            // A Merkle leaf (prefix, 32 bytes) or the first block of a node (prefix, 64).
            scratch.fill(0);
            scratch[0] = *prefix;
            if let Some(children) = tail.get(..BLOCK_BYTES - 1) {
                scratch[1..BLOCK_BYTES].copy_from_slice(children);
                return (&scratch[..], len);
            }
            if let Ok(record_hash) = <&[u8; 32]>::try_from(tail) {
                scratch[1..33].copy_from_slice(record_hash);
                return (&scratch[..], len);
            }
        }
    }
    // Anything else (short inputs): byte ranges of any length.
    scratch.fill(0);
    let mut filled = 0;
    let end = start + BLOCK_BYTES;
    if start < head.len() {
        let from_head = &head[start..head.len().min(end)];
        scratch[..from_head.len()].copy_from_slice(from_head);
        filled = from_head.len();
    }
    let tail_start = (start + filled).saturating_sub(head.len());
    let tail_end = end.saturating_sub(head.len()).min(tail.len());
    if tail_start < tail_end {
        let from_tail = &tail[tail_start..tail_end];
        scratch[filled..filled + from_tail.len()].copy_from_slice(from_tail);
    }
    (&scratch[..], len)
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    //! The eight-lane compression in AVX2, after the `blake3` crate's own `avx2` module
    //! (its `hash8`), cut down to single-chunk inputs in derive-key-material mode.

    use std::arch::x86_64::*;

    use super::{block_bytes, Input, Mode, Scratch, BLOCK_BYTES, LANES};
    use crate::chain::{event_context_key, Hash};

    // BLAKE3's flags and constants (BLAKE3 specification §2.1-2.2).
    const CHUNK_START: u32 = 1 << 0;
    const CHUNK_END: u32 = 1 << 1;
    const ROOT: u32 = 1 << 3;
    const DERIVE_KEY_MATERIAL: u32 = 1 << 6;
    const IV: [u32; 8] = [
        0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A, 0x510E527F, 0x9B05688C, 0x1F83D9AB,
        0x5BE0CD19,
    ];
    const MSG_SCHEDULE: [[usize; 16]; 7] = [
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15],
        [2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8],
        [3, 4, 10, 12, 13, 2, 7, 14, 6, 5, 9, 0, 11, 15, 8, 1],
        [10, 7, 12, 9, 14, 3, 13, 15, 4, 0, 11, 2, 5, 8, 1, 6],
        [12, 13, 9, 11, 15, 10, 14, 8, 7, 2, 5, 3, 0, 1, 6, 4],
        [9, 14, 11, 5, 8, 12, 15, 1, 13, 3, 0, 10, 2, 6, 4, 7],
        [11, 15, 5, 0, 1, 9, 8, 6, 14, 10, 2, 12, 3, 4, 7, 13],
    ];

    /// The hashes of [`LANES`] inputs that are all `blocks` blocks long, into `out`: one BLAKE3 chunk per
    /// lane, chunk counter 0, the last block flagged as the root; keyed by the IV (`Hash`) or
    /// in derive-key-material mode under the event context's key (`RecordHash`).
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn hash_group(
        mode: Mode,
        inputs: &[Input<'_>; LANES],
        blocks: usize,
        out: &mut [Hash; LANES],
    ) {
        let (key, mode_flags) = match mode {
            Mode::Hash => (IV, 0),
            Mode::RecordHash => {
                let key = event_context_key();
                let words = std::array::from_fn(|word| {
                    let at = 4 * word;
                    u32::from_le_bytes([key[at], key[at + 1], key[at + 2], key[at + 3]])
                });
                (words, DERIVE_KEY_MATERIAL)
            }
        };
        let mut cv = [_mm256_setzero_si256(); 8];
        for (row, word) in cv.iter_mut().zip(key) {
            *row = _mm256_set1_epi32(word as i32);
        }
        let mut scratch: [Scratch; LANES] = [[0u8; 2 * BLOCK_BYTES]; LANES];
        for block in 0..blocks {
            let mut low = [_mm256_setzero_si256(); LANES];
            let mut high = [_mm256_setzero_si256(); LANES];
            let mut lens = [0i32; LANES];
            for (lane, scratch) in scratch.iter_mut().enumerate() {
                let (bytes, len) = block_bytes(scratch, inputs[lane], block);
                let bytes = &bytes[..BLOCK_BYTES];
                // Both 32-byte loads are inside the 64 bytes of `bytes`.
                low[lane] = _mm256_loadu_si256(bytes.as_ptr().cast());
                high[lane] = _mm256_loadu_si256(bytes[32..].as_ptr().cast());
                lens[lane] = len as i32;
            }
            transpose(&mut low);
            transpose(&mut high);
            let message = [
                low[0], low[1], low[2], low[3], low[4], low[5], low[6], low[7], high[0], high[1],
                high[2], high[3], high[4], high[5], high[6], high[7],
            ];
            let mut flags = mode_flags;
            if block == 0 {
                flags |= CHUNK_START;
            }
            if block + 1 == blocks {
                flags |= CHUNK_END | ROOT;
            }
            let block_len = _mm256_setr_epi32(
                lens[0], lens[1], lens[2], lens[3], lens[4], lens[5], lens[6], lens[7],
            );
            cv = compress(&cv, &message, block_len, flags);
        }
        transpose(&mut cv);
        for (hash, row) in out.iter_mut().zip(&cv) {
            // 32 bytes into a 32-byte array.
            _mm256_storeu_si256(hash.0.as_mut_ptr().cast(), *row);
        }
    }

    /// The compression function on every lane, counter 0; the new chaining values (the first
    /// half of the output: for the root block, the first 32 bytes of the hash).
    #[inline(always)]
    unsafe fn compress(
        cv: &[__m256i; 8],
        message: &[__m256i; 16],
        block_len: __m256i,
        flags: u32,
    ) -> [__m256i; 8] {
        let mut v = [
            cv[0],
            cv[1],
            cv[2],
            cv[3],
            cv[4],
            cv[5],
            cv[6],
            cv[7],
            _mm256_set1_epi32(IV[0] as i32),
            _mm256_set1_epi32(IV[1] as i32),
            _mm256_set1_epi32(IV[2] as i32),
            _mm256_set1_epi32(IV[3] as i32),
            _mm256_setzero_si256(),
            _mm256_setzero_si256(),
            block_len,
            _mm256_set1_epi32(flags as i32),
        ];
        // Seven rounds written out, so that every message index is a constant and the state
        // stays in registers.
        round(&mut v, message, 0);
        round(&mut v, message, 1);
        round(&mut v, message, 2);
        round(&mut v, message, 3);
        round(&mut v, message, 4);
        round(&mut v, message, 5);
        round(&mut v, message, 6);
        [
            _mm256_xor_si256(v[0], v[8]),
            _mm256_xor_si256(v[1], v[9]),
            _mm256_xor_si256(v[2], v[10]),
            _mm256_xor_si256(v[3], v[11]),
            _mm256_xor_si256(v[4], v[12]),
            _mm256_xor_si256(v[5], v[13]),
            _mm256_xor_si256(v[6], v[14]),
            _mm256_xor_si256(v[7], v[15]),
        ]
    }

    #[inline(always)]
    unsafe fn round(v: &mut [__m256i; 16], message: &[__m256i; 16], round: usize) {
        let schedule = &MSG_SCHEDULE[round];
        let m = |index: usize| message[schedule[index]];
        g(v, 0, 4, 8, 12, m(0), m(1));
        g(v, 1, 5, 9, 13, m(2), m(3));
        g(v, 2, 6, 10, 14, m(4), m(5));
        g(v, 3, 7, 11, 15, m(6), m(7));
        g(v, 0, 5, 10, 15, m(8), m(9));
        g(v, 1, 6, 11, 12, m(10), m(11));
        g(v, 2, 7, 8, 13, m(12), m(13));
        g(v, 3, 4, 9, 14, m(14), m(15));
    }

    #[inline(always)]
    unsafe fn g(
        v: &mut [__m256i; 16],
        a: usize,
        b: usize,
        c: usize,
        d: usize,
        mx: __m256i,
        my: __m256i,
    ) {
        v[a] = _mm256_add_epi32(_mm256_add_epi32(v[a], v[b]), mx);
        v[d] = rotate_right_16(_mm256_xor_si256(v[d], v[a]));
        v[c] = _mm256_add_epi32(v[c], v[d]);
        v[b] = rotate_right_12(_mm256_xor_si256(v[b], v[c]));
        v[a] = _mm256_add_epi32(_mm256_add_epi32(v[a], v[b]), my);
        v[d] = rotate_right_8(_mm256_xor_si256(v[d], v[a]));
        v[c] = _mm256_add_epi32(v[c], v[d]);
        v[b] = rotate_right_7(_mm256_xor_si256(v[b], v[c]));
    }

    // Rotations by whole bytes are one byte shuffle; the others two shifts and an or.
    #[inline(always)]
    unsafe fn rotate_right_16(x: __m256i) -> __m256i {
        let by_16 = _mm256_setr_epi8(
            2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13, 2, 3, 0, 1, 6, 7, 4, 5, 10, 11,
            8, 9, 14, 15, 12, 13,
        );
        _mm256_shuffle_epi8(x, by_16)
    }

    #[inline(always)]
    unsafe fn rotate_right_8(x: __m256i) -> __m256i {
        let by_8 = _mm256_setr_epi8(
            1, 2, 3, 0, 5, 6, 7, 4, 9, 10, 11, 8, 13, 14, 15, 12, 1, 2, 3, 0, 5, 6, 7, 4, 9, 10,
            11, 8, 13, 14, 15, 12,
        );
        _mm256_shuffle_epi8(x, by_8)
    }

    #[inline(always)]
    unsafe fn rotate_right_12(x: __m256i) -> __m256i {
        _mm256_or_si256(_mm256_srli_epi32(x, 12), _mm256_slli_epi32(x, 20))
    }

    #[inline(always)]
    unsafe fn rotate_right_7(x: __m256i) -> __m256i {
        _mm256_or_si256(_mm256_srli_epi32(x, 7), _mm256_slli_epi32(x, 25))
    }

    /// Transposes eight rows of eight 32-bit words: row `lane` word `w` becomes row `w` word
    /// `lane` (as the `blake3` crate's `transpose_vecs`).
    #[inline(always)]
    unsafe fn transpose(rows: &mut [__m256i; 8]) {
        let ab_0145 = _mm256_unpacklo_epi32(rows[0], rows[1]);
        let ab_2367 = _mm256_unpackhi_epi32(rows[0], rows[1]);
        let cd_0145 = _mm256_unpacklo_epi32(rows[2], rows[3]);
        let cd_2367 = _mm256_unpackhi_epi32(rows[2], rows[3]);
        let ef_0145 = _mm256_unpacklo_epi32(rows[4], rows[5]);
        let ef_2367 = _mm256_unpackhi_epi32(rows[4], rows[5]);
        let gh_0145 = _mm256_unpacklo_epi32(rows[6], rows[7]);
        let gh_2367 = _mm256_unpackhi_epi32(rows[6], rows[7]);
        let abcd_04 = _mm256_unpacklo_epi64(ab_0145, cd_0145);
        let abcd_15 = _mm256_unpackhi_epi64(ab_0145, cd_0145);
        let abcd_26 = _mm256_unpacklo_epi64(ab_2367, cd_2367);
        let abcd_37 = _mm256_unpackhi_epi64(ab_2367, cd_2367);
        let efgh_04 = _mm256_unpacklo_epi64(ef_0145, gh_0145);
        let efgh_15 = _mm256_unpackhi_epi64(ef_0145, gh_0145);
        let efgh_26 = _mm256_unpacklo_epi64(ef_2367, gh_2367);
        let efgh_37 = _mm256_unpackhi_epi64(ef_2367, gh_2367);
        rows[0] = _mm256_permute2x128_si256(abcd_04, efgh_04, 0x20);
        rows[1] = _mm256_permute2x128_si256(abcd_15, efgh_15, 0x20);
        rows[2] = _mm256_permute2x128_si256(abcd_26, efgh_26, 0x20);
        rows[3] = _mm256_permute2x128_si256(abcd_37, efgh_37, 0x20);
        rows[4] = _mm256_permute2x128_si256(abcd_04, efgh_04, 0x31);
        rows[5] = _mm256_permute2x128_si256(abcd_15, efgh_15, 0x31);
        rows[6] = _mm256_permute2x128_si256(abcd_26, efgh_26, 0x31);
        rows[7] = _mm256_permute2x128_si256(abcd_37, efgh_37, 0x31);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::{genesis, record_hash};

    /// Bytes that differ from position to position and from seed to seed.
    fn pattern(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|at| (at as u8).wrapping_mul(31).wrapping_add(seed))
            .collect()
    }

    /// Every input length from empty to past one chunk, split between head and tail in
    /// several ways, mixed so that groups hold different lengths of the same block count and
    /// short last groups: each hash is the `blake3` crate's.
    #[test]
    fn every_length_hashes_as_blake3_does() {
        let data: Vec<Vec<u8>> = (0..=CHUNK_BYTES + 70)
            .map(|len| pattern(len, len as u8))
            .collect();
        for head_bytes in [0, 1, 32, 64, 65] {
            let inputs: Vec<Input<'_>> = data
                .iter()
                .map(|bytes| {
                    let split = head_bytes.min(bytes.len());
                    Input {
                        head: &bytes[..split],
                        tail: &bytes[split..],
                    }
                })
                .collect();
            for mode in [Mode::Hash, Mode::RecordHash] {
                let mut out = vec![Hash::ZERO; inputs.len()];
                hash_many(mode, &inputs, &mut out);
                for (bytes, hash) in data.iter().zip(&out) {
                    let expect = match mode {
                        Mode::Hash => Hash(*blake3::hash(bytes).as_bytes()),
                        Mode::RecordHash => {
                            Hash(blake3::derive_key(crate::chain::EVENT_CONTEXT, bytes))
                        }
                    };
                    assert_eq!(
                        *hash,
                        expect,
                        "{mode:?}, {} bytes, head {head_bytes}",
                        bytes.len()
                    );
                }
            }
        }
    }

    #[test]
    fn record_hashes_are_record_hash() {
        let prevs: Vec<Hash> = (0..20u8).map(|n| Hash([n; 32])).collect();
        let prevs = [prevs, vec![genesis("fundledger.example/lanes")]].concat();
        let body = pattern(300, 7);
        let inputs: Vec<Input<'_>> = prevs
            .iter()
            .map(|prev| Input {
                head: &prev.0,
                tail: &body,
            })
            .collect();
        let mut out = vec![Hash::ZERO; inputs.len()];
        hash_many(Mode::RecordHash, &inputs, &mut out);
        for (prev, hash) in prevs.iter().zip(&out) {
            assert_eq!(*hash, record_hash(prev, &body));
        }
    }
}
