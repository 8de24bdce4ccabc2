//! The derivative-cache envelope decoder on arbitrary bytes (what a
//! corrupted or foreign Redis value looks like).
//!
//! Decoding must answer an entry or `None` without panicking, and an entry
//! it accepts must encode back to exactly the bytes it came from (so a
//! decoded entry can never be a misreading of its header).

use imgmesh_derivative_cache::entry::{decode_envelope, encode_envelope};

fn main() {
    afl::fuzz!(|data: &[u8]| {
        if let Some(entry) = decode_envelope(data.to_vec()) {
            assert_eq!(
                encode_envelope(&entry),
                data,
                "an accepted envelope re-encodes to other bytes"
            );
        }
    });
}
