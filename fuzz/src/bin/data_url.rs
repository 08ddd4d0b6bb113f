//! Fuzz target `data_url`: see [`keel_fuzz::data_url`].

fn main() {
    afl::fuzz!(|data: &[u8]| keel_fuzz::data_url(data));
}
