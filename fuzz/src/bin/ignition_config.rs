//! Fuzz target `ignition_config`: see [`keel_fuzz::ignition_config`].

fn main() {
    afl::fuzz!(|data: &[u8]| keel_fuzz::ignition_config(data));
}
