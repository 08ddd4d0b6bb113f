//! A VM that cannot start because QEMU or firmware is missing fails with an error naming the
//! Debian package; it never passes silently. Boots nothing, so it runs without the `vm` feature.

use qemu_tests::Vm;

#[test]
fn missing_qemu_names_the_debian_package() {
    // The other test here does not need PATH: it fails before looking for QEMU.
    std::env::set_var("PATH", "/nonexistent");
    let dir = tempfile::tempdir().unwrap();
    let err = Vm::builder()
        .pxe(dir.path())
        .start()
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "qemu-system-x86_64 not found (looked for $PATH/qemu-system-x86_64): install the Debian \
         package `qemu-system-x86` (apt-get install qemu-system-x86)"
    );
}

#[test]
fn nothing_to_boot_is_a_configuration_error() {
    let err = Vm::builder().name("empty").start().unwrap_err().to_string();
    assert_eq!(
        err,
        "vm empty: nothing to boot: add .disk(..), .disk_copy_of(..) or .pxe(..)"
    );
}
