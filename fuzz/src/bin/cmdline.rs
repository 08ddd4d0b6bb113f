//! Fuzz target `cmdline`: see [`keel_fuzz::cmdline`].

fn main() {
    afl::fuzz!(|data: &[u8]| keel_fuzz::cmdline(data));
}
