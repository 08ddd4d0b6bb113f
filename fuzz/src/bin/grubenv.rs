//! Fuzz target `grubenv`: see [`keel_fuzz::grubenv`].

fn main() {
    afl::fuzz!(|data: &[u8]| keel_fuzz::grubenv(data));
}
