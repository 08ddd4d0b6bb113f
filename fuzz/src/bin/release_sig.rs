//! Fuzz target `release_sig`: see [`keel_fuzz::release_sig`].

fn main() {
    afl::fuzz!(|data: &[u8]| keel_fuzz::release_sig(data));
}
