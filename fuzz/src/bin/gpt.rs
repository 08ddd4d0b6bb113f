//! Fuzz target `gpt`: see [`keel_fuzz::gpt`].

fn main() {
    afl::fuzz!(|data: &[u8]| keel_fuzz::gpt(data));
}
