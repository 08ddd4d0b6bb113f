#!/usr/bin/env python3
"""Writes the binary seeds of the fuzz corpus (the text seeds are written by hand):

  corpus/gpt/keel-16-sectors.img  a 16-sector (8 KiB) disk: protective MBR, primary GPT at LBA 1
                                  with a 4-entry array at LBA 2, backup array and header at the
                                  end, and four of Keel's partitions (EFI-SYSTEM, USR-A, USR-B,
                                  ROOT) one to four sectors each
  corpus/grubenv/keel.env         a 1024-byte block as the updater writes it (a trial of B)
  corpus/grubenv/grub-escapes.env a block with what GRUB's reader handles: comments, `\\`
                                  escapes, a continued line, a NUL and duplicates

Run from anywhere: python3 fuzz/make-seeds.py (the output is committed; rerun after a change).
"""
import os
import struct
import uuid
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
SECTOR = 512


def guid(text):
    return uuid.UUID(text).bytes_le


def gpt_disk():
    sectors = 16
    entries = 4
    disk = bytearray(sectors * SECTOR)
    # Protective MBR: one 0xEE partition covering the disk.
    mbr = struct.pack("<B3sB3sII", 0, b"\x00\x02\x00", 0xEE, b"\xff\xff\xff", 1, sectors - 1)
    disk[446:446 + 16] = mbr
    disk[510:512] = b"\x55\xaa"
    parts = [
        ("C12A7328-F81F-11D2-BA4B-00A0C93EC93B", "EFI-SYSTEM", 3, 3, 0),
        ("5DFBF5F4-2848-4BAC-AA5E-0D9A20B745A6", "USR-A", 4, 6, 0),
        ("5DFBF5F4-2848-4BAC-AA5E-0D9A20B745A6", "USR-B", 7, 9, 0),
        ("3884DD41-8582-4404-B9A8-E9B84F2DF50E", "ROOT", 10, 13, 1 << 55),
    ]
    array = bytearray()
    for n, (type_guid, name, first, last, attrs) in enumerate(parts, 1):
        part_guid = uuid.UUID(int=0x4B45454C_0000_4000_8000_000000000000 + n)
        label = name.encode("utf-16-le").ljust(72, b"\x00")
        array += guid(type_guid) + part_guid.bytes_le + struct.pack("<QQQ", first, last, attrs) + label
    array = bytes(array.ljust(entries * 128, b"\x00"))
    array_crc = zlib.crc32(array)
    disk_guid = guid("4B45454C-4655-5A5A-8000-000000000001")

    def header(current, backup, part_start):
        fields = [b"EFI PART", 0x00010000, 92, 0, 0, current, backup, 3, sectors - 3,
                  disk_guid, part_start, entries, 128, array_crc]
        raw = struct.pack("<8sIIIIQQQQ16sQIII", *fields)
        fields[3] = zlib.crc32(raw)
        return struct.pack("<8sIIIIQQQQ16sQIII", *fields)

    disk[1 * SECTOR:1 * SECTOR + 92] = header(1, sectors - 1, 2)
    disk[2 * SECTOR:2 * SECTOR + len(array)] = array
    disk[(sectors - 2) * SECTOR:(sectors - 2) * SECTOR + len(array)] = array
    disk[(sectors - 1) * SECTOR:(sectors - 1) * SECTOR + 92] = header(sectors - 1, 1, sectors - 2)
    return bytes(disk)


def grubenv(text):
    head = b"# GRUB Environment Block\n"
    block = head + text
    assert len(block) <= 1024
    return block.ljust(1024, b"#")


def write(path, data):
    path = os.path.join(HERE, "corpus", path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


write("gpt/keel-16-sectors.img", gpt_disk())
write("grubenv/keel.env", grubenv(b"keel_good=A\nkeel_next=B\nkeel_tries=3\nkeel_failed=none\n"))
write("grubenv/grub-escapes.env", grubenv(
    b"# a comment\\\ncontinued\nkeel_good=A\nkeel_next=B\\\\x\\\nnext line\n"
    b"keel_tries=2\x00junk\nkeel_good=B\nkeel_failed=none\n"))
