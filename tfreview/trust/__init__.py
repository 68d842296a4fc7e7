"""Trust: who signed what. SSHSIG signatures (sshsig.py, verified in-process), the signing key of the person at the
keyboard (signer.py, signs through `ssh-keygen -Y sign`), the signed, versioned policy in the store (policy.py),
and the checks that turn signed statements into verified facts for the pure policy core (verify.py).

A statement is canonical JSON (sorted keys, UTF-8, no insignificant whitespace) naming the policy version it was
made under; its `signature` field is the armoured SSHSIG signature of the statement without that field.
"""
