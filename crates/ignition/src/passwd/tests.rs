//! Account file tests: parsing, rendering, and useradd/usermod/userdel edits.

use super::*;

const PASSWD: &str = "root:x:0:0:root:/root:/bin/bash\n# comment kept\ncore:x:500:500:CoreOS Admin:/home/core:/bin/bash\n";
const GROUP: &str = "root:x:0:\nusers:x:100:\ncore:x:500:\ndocker:x:233:core\n";
const SHADOW: &str = "root:*:19000:0:99999:7:::\ncore:*:19000:0:99999:7:::\n";

fn db() -> Db {
    Db::parse(PASSWD, GROUP, SHADOW, None)
}

fn user(name: &str) -> UserSpec {
    UserSpec {
        name: name.into(),
        ..Default::default()
    }
}

#[test]
fn roundtrip_keeps_unknown_lines() {
    let f = db().render();
    assert_eq!(f.passwd, PASSWD);
    assert_eq!(f.group, GROUP);
    assert_eq!(f.shadow, SHADOW);
    assert_eq!(f.gshadow, None);
}

#[test]
fn new_user_gets_useradd_defaults() {
    let mut db = db();
    let out = db
        .ensure_user(
            &UserSpec {
                password_hash: Some("$6$salt$hash".into()),
                ..user("alice")
            },
            &Reserved::default(),
            20000,
        )
        .unwrap();
    assert_eq!(out.change, Change::Created);
    let f = db.render();
    assert!(f
        .passwd
        .ends_with("alice:x:1000:1000::/home/alice:/bin/bash\n"));
    assert!(f.group.ends_with("alice:x:1000:\n"));
    assert!(f
        .shadow
        .ends_with("alice:$6$salt$hash:20000:0:99999:7:::\n"));
}

#[test]
fn explicit_ids_are_reserved_for_their_owners() {
    let mut db = Db::parse("", "", "", None);
    let reserved = Reserved {
        uids: [1000].into(),
        gids: [1000].into(),
    };
    let a = db.ensure_user(&user("systemUser"), &reserved, 1).unwrap();
    assert_eq!(a.entry.uid, 1001);
    let b = db
        .ensure_user(
            &UserSpec {
                uid: Some(1000),
                ..user("jenkins")
            },
            &reserved,
            1,
        )
        .unwrap();
    assert_eq!((b.entry.uid, b.entry.gid), (1000, 1000));
    assert_eq!(db.group("jenkins").unwrap().gid, 1000);
    assert_eq!(db.group("systemUser").unwrap().gid, 1001);
}

#[test]
fn duplicate_uid_is_refused() {
    let mut db = db();
    let err = db
        .ensure_user(
            &UserSpec {
                uid: Some(500),
                ..user("bob")
            },
            &Reserved::default(),
            1,
        )
        .unwrap_err();
    assert_eq!(
        err,
        PasswdError::UidTaken {
            uid: 500,
            other: "core".into()
        }
    );
}

#[test]
fn existing_user_is_modified_not_duplicated() {
    let mut db = db();
    let out = db
        .ensure_user(
            &UserSpec {
                groups: vec!["docker".into(), "sudo".into()],
                password_hash: Some("$6$x".into()),
                ..user("core")
            },
            &Reserved::default(),
            1,
        )
        .unwrap();
    assert_eq!(out.change, Change::Modified);
    assert_eq!(out.created_groups, ["sudo"]);
    let f = db.render();
    assert_eq!(
        f.passwd.lines().filter(|l| l.starts_with("core:")).count(),
        1
    );
    assert!(
        f.group.contains("docker:x:233:core\n"),
        "no duplicate member"
    );
    assert!(f.group.contains("sudo:x:999:core\n"));
    assert!(f.shadow.contains("core:$6$x:19000:"));
}

#[test]
fn system_users_and_groups_count_down_from_999() {
    let mut db = db();
    let (_, gid) = db
        .ensure_group(
            &GroupSpec {
                name: "svc".into(),
                system: true,
                ..Default::default()
            },
            &Reserved::default(),
        )
        .unwrap();
    assert_eq!(gid, 999);
    let out = db
        .ensure_user(
            &UserSpec {
                system: true,
                no_user_group: true,
                ..user("daemon1")
            },
            &Reserved::default(),
            1,
        )
        .unwrap();
    assert_eq!((out.entry.uid, out.entry.gid), (999, 100));
}

#[test]
fn groups_add_modify_and_conflict() {
    let mut db = db();
    let spec = GroupSpec {
        name: "ops".into(),
        gid: Some(4000),
        ..Default::default()
    };
    assert_eq!(
        db.ensure_group(&spec, &Reserved::default()).unwrap(),
        (Change::Created, 4000)
    );
    assert_eq!(
        db.ensure_group(&spec, &Reserved::default()).unwrap(),
        (Change::Unchanged, 4000)
    );
    let clash = GroupSpec {
        name: "dev".into(),
        gid: Some(4000),
        ..Default::default()
    };
    assert!(matches!(
        db.ensure_group(&clash, &Reserved::default()),
        Err(PasswdError::GidTaken { gid: 4000, .. })
    ));
    let primary = UserSpec {
        primary_group: Some("ops".into()),
        ..user("eve")
    };
    let out = db.ensure_user(&primary, &Reserved::default(), 1).unwrap();
    assert_eq!(out.entry.gid, 4000);
    assert!(
        db.group("eve").is_none(),
        "no private group with primaryGroup"
    );
    let missing = UserSpec {
        primary_group: Some("nope".into()),
        ..user("mallory")
    };
    assert_eq!(
        db.ensure_user(&missing, &Reserved::default(), 1)
            .unwrap_err(),
        PasswdError::NoSuchGroup("nope".into())
    );
}

#[test]
fn gshadow_is_kept_in_step() {
    let mut db = Db::parse(PASSWD, GROUP, SHADOW, Some("root:*::\ndocker:!::core\n"));
    db.ensure_group(
        &GroupSpec {
            name: "wheel".into(),
            password_hash: Some("$6$g".into()),
            ..Default::default()
        },
        &Reserved::default(),
    )
    .unwrap();
    db.ensure_user(
        &UserSpec {
            groups: vec!["wheel".into()],
            ..user("ann")
        },
        &Reserved::default(),
        1,
    )
    .unwrap();
    let gs = db.render().gshadow.unwrap();
    assert!(gs.contains("wheel:$6$g::ann\n"), "{gs}");
    assert!(gs.contains("ann:!::\n"), "{gs}");
}

#[test]
fn remove_user_and_private_group() {
    let mut db = db();
    db.ensure_user(&user("tmp"), &Reserved::default(), 1)
        .unwrap();
    assert!(db.remove_user("tmp").is_some());
    let f = db.render();
    assert!(!f.passwd.contains("tmp:"));
    assert!(!f.group.contains("tmp:"));
    assert!(!f.shadow.contains("tmp:"));
    assert!(db.remove_user("tmp").is_none());
}

#[test]
fn empty_hash_locks() {
    let mut db = db();
    db.ensure_user(
        &UserSpec {
            password_hash: Some(String::new()),
            ..user("core")
        },
        &Reserved::default(),
        1,
    )
    .unwrap();
    assert_eq!(db.shadow("core").unwrap().hash, "*");
}
