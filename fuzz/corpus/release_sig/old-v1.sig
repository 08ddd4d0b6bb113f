keel-signature-v1
sha256=00
