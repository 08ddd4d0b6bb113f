//! Storage against a recording fake of the [`Disks`] seam: partitioning, formatting,
//! mounts, and refusing conflicts before any write.

use super::*;
use crate::{load, MapFetcher};

fn cfg(json: &str) -> ValidConfig {
    load(json.as_bytes(), &MapFetcher::new()).unwrap_or_else(|r| panic!("{r}"))
}

const DOCKER: &str = r#"{"ignition":{"version":"3.3.0"},"storage":{
    "disks":[{"device":"/dev/vdb","wipeTable":false,"partitions":[{"label":"docker","sizeMiB":0}]}],
    "filesystems":[{"device":"/dev/disk/by-partlabel/docker","format":"ext4","label":"DOCKER","wipeFilesystem":true,"path":"/var/lib/docker"}]}}"#;

#[test]
fn second_disk_for_docker_partitions_then_formats() {
    let cfg = cfg(DOCKER);
    let fake = Recorder {
        nodes: [(
            "/dev/disk/by-partlabel/docker".to_string(),
            "/dev/vdb1".to_string(),
        )]
        .into(),
        ..Default::default()
    }
    .answer(
        "/sbin/sfdisk --json /dev/vdb",
        Err("exit status: 1: does not contain a recognized partition table"),
    )
    .answer(
        "/sbin/blkid -p -o export /dev/vdb1",
        Err("exit status: 2: "),
    );
    let out = apply(&cfg, &fake, &Tools::default()).unwrap();
    assert_eq!(
        fake.calls(),
        [
            "/sbin/sfdisk --json /dev/vdb",
            "/sbin/sfdisk --wipe always -q /dev/vdb <<label: gpt\n/dev/vdb1 : type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name=\"docker\"\n",
            "/sbin/blkid -p -o export /dev/vdb1",
            "/sbin/mke2fs -F -q -t ext4 -L DOCKER /dev/vdb1",
        ]
    );
    assert_eq!(
        out.mounts,
        [Mount {
            node: "/dev/vdb1".into(),
            path: "/var/lib/docker".into(),
            format: "ext4".into()
        }]
    );
    let units = mount_units(&cfg);
    assert_eq!(units[0].name.as_deref(), Some("var-lib-docker.mount"));
    let text = units[0].contents.as_deref().unwrap();
    assert!(
        text.contains("What=/dev/disk/by-partlabel/docker\nWhere=/var/lib/docker\nType=ext4\n"),
        "{text}"
    );
    assert!(text.contains("WantedBy=local-fs.target"), "{text}");
}

const TABLE: &str = r#"{"partitiontable":{"label":"gpt","sectorsize":512,"partitions":[
    {"node":"/dev/vdb1","start":2048,"size":204800,"type":"0FC63DAF-8483-4772-8E79-3D69D8477DE4","uuid":"11111111-2222-3333-4444-555555555555","name":"docker"}]}}"#;

#[test]
fn a_second_run_keeps_what_matches_and_writes_nothing() {
    let cfg = cfg(DOCKER.replace("true", "false").as_str());
    let fake = Recorder {
        nodes: [(
            "/dev/disk/by-partlabel/docker".to_string(),
            "/dev/vdb1".to_string(),
        )]
        .into(),
        ..Default::default()
    }
    .answer("/sbin/sfdisk --json /dev/vdb", Ok(TABLE))
    .answer(
        "/sbin/blkid -p -o export /dev/vdb1",
        Ok("DEVNAME=/dev/vdb1\nLABEL=DOCKER\nTYPE=ext4\n"),
    );
    let out = apply(&cfg, &fake, &Tools::default()).unwrap();
    assert_eq!(
        fake.calls(),
        [
            "/sbin/sfdisk --json /dev/vdb",
            "/sbin/blkid -p -o export /dev/vdb1"
        ]
    );
    assert_eq!(out.done, ["kept the ext4 filesystem on /dev/vdb1"]);
}

#[test]
fn conflicts_are_found_before_anything_is_written() {
    // The partition matches, the filesystem on it does not, and wipeFilesystem is false.
    let cfg = cfg(DOCKER.replace("true", "false").as_str());
    let fake = Recorder::default()
        .answer("/sbin/sfdisk --json /dev/vdb", Ok(TABLE))
        .answer(
            "/sbin/blkid -p -o export /dev/disk/by-partlabel/docker",
            Ok("TYPE=xfs\n"),
        );
    let err = apply(&cfg, &fake, &Tools::default()).unwrap_err();
    assert_eq!(err.to_string(), "$.storage.filesystems[0]: /dev/disk/by-partlabel/docker already has a filesystem that does not match (it holds xfs, not ext4; its label is \"\", not \"DOCKER\"); set wipeFilesystem to replace it");
    assert!(fake.calls().iter().all(|c| !c.contains("mke2fs")));

    // A mismatching partition without wipePartitionEntry.
    let d = cfg.storage.disks[0].clone();
    let mut d2 = d.clone();
    d2.partitions[0].size_mib = Some(10);
    let table = parse_table(TABLE).unwrap();
    let err = partition_script(&d2, "/dev/vdb", Some(&table)).unwrap_err();
    assert!(err.to_string().starts_with("$.storage.disks[0].partitions[0]: partition 1 on /dev/vdb exists but does not match the config (size 204800 sectors)"), "{err}");
    d2.partitions[0].wipe_partition_entry = Some(true);
    let script = partition_script(&d2, "/dev/vdb", Some(&table))
        .unwrap()
        .unwrap();
    assert_eq!(script, "label: gpt\n/dev/vdb1 : size=20480, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name=\"docker\"\n");

    // Unsupported formats and missing tools are refused before any call that writes.
    let xfs = cfg_of_format("xfs");
    let fake = Recorder::default();
    let err = apply(&xfs, &fake, &Tools::default()).unwrap_err();
    assert!(
        err.to_string().contains("cannot create xfs filesystems"),
        "{err}"
    );
    assert!(fake.calls().is_empty());
    let fake = Recorder {
        programs: vec!["/sbin/sfdisk".into()],
        ..Default::default()
    };
    let err = apply(&cfg_of_format("ext4"), &fake, &Tools::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "$.storage.filesystems[0]: /sbin/mke2fs is not available on this system"
    );
    assert!(fake.calls().is_empty());
}

fn cfg_of_format(format: &str) -> ValidConfig {
    cfg(&format!(
        r#"{{"ignition":{{"version":"3.3.0"}},"storage":{{"filesystems":[{{"device":"/dev/vdc","format":"{format}"}}]}}}}"#
    ))
}

#[test]
fn partitions_keep_numbers_and_fill_gaps() {
    let cfg = cfg(
        r#"{"ignition":{"version":"3.3.0"},"storage":{"disks":[{"device":"/dev/nvme1n1","partitions":[
        {"label":"a","number":3,"sizeMiB":100,"startMiB":1},{"label":"b","sizeMiB":0},
        {"number":1,"shouldExist":false,"wipePartitionEntry":true}]}]}}"#,
    );
    let table = parse_table(&TABLE.replace("/dev/vdb1", "/dev/nvme1n1p1")).unwrap();
    let script = partition_script(&cfg.storage.disks[0], "/dev/nvme1n1", Some(&table))
        .unwrap()
        .unwrap();
    assert_eq!(
        script,
        "label: gpt\n\
         /dev/nvme1n1p3 : start=2048, size=204800, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name=\"a\"\n\
         /dev/nvme1n1p1 : type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name=\"b\"\n"
    );
}

#[test]
fn sizes_past_u64_bytes_are_errors_not_panics() {
    // Validation refuses these; a model built another way must still not wrap or panic.
    let mut d = cfg(DOCKER).storage.disks[0].clone();
    d.partitions[0].size_mib = Some(1 << 44);
    let err = partition_script(&d, "/dev/vdb", None).unwrap_err();
    assert!(err.to_string().contains("sizeMiB"), "{err}");
    d.partitions[0].size_mib = None;
    d.partitions[0].start_sectors = Some(i64::MAX);
    let table = parse_table(&TABLE.replace("\"sectorsize\":512", "\"sectorsize\":4096")).unwrap();
    let err = partition_script(&d, "/dev/vdb", Some(&table)).unwrap_err();
    assert!(err.to_string().contains("start"), "{err}");
}

#[test]
fn escapes_like_systemd() {
    assert_eq!(escape_path("/var/lib/docker"), "var-lib-docker");
    assert_eq!(escape_path("/srv/my-data/"), "srv-my\\x2ddata");
    assert_eq!(escape_path("/"), "-");
    assert_eq!(partition_node("/dev/sda", 2), "/dev/sda2");
    assert_eq!(partition_node("/dev/loop0", 1), "/dev/loop0p1");
}

#[test]
fn probe_output_parses() {
    let p = parse_probe("DEVNAME=/dev/vdb1\nUUID=abc\nLABEL=DOCKER\nTYPE=ext4\nUSAGE=filesystem\n");
    assert_eq!(
        p,
        Probe {
            fs_type: Some("ext4".into()),
            label: Some("DOCKER".into()),
            uuid: Some("abc".into())
        }
    );
}
