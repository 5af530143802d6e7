"""Second, independent CSR checker for the e2e suite: pyca/cryptography.

Reads a JSON array of PEM strings on stdin and prints a JSON array with one
report per CSR: whether its self-signature verifies, its subject RDNs in
order, its subjectAltName dNSNames, and its public key. Run it with the
system interpreter (/usr/bin/python3), which has python3-cryptography.
"""

import json
import sys

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa


def key_info(csr):
    key = csr.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        return {"type": "rsa", "bits": key.key_size, "exponent": key.public_numbers().e}
    if isinstance(key, ec.EllipticCurvePublicKey):
        return {"type": "ec", "bits": key.key_size, "curve": key.curve.name}
    return {"type": type(key).__name__}


def report(pem):
    try:
        csr = x509.load_pem_x509_csr(pem.encode("ascii"))
    except Exception as error:  # any parse failure is a finding, not a crash
        return {"loaded": False, "error": type(error).__name__}
    subject = []
    for rdn in csr.subject.rdns:
        for attribute in rdn:
            # _type is the ASN.1 string type actually encoded (PrintableString,
            # UTF8String); cryptography 38 has no public accessor for it.
            string_type = getattr(getattr(attribute, "_type", None), "name", None)
            subject.append(
                {
                    "oid": attribute.oid.dotted_string,
                    "value": attribute.value,
                    "string_type": string_type,
                    "rdn_size": len(rdn),
                }
            )
    sans = []
    other_names = 0
    try:
        extension = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        for name in extension.value:
            if isinstance(name, x509.DNSName):
                sans.append(name.value)
            else:
                other_names += 1
    except x509.ExtensionNotFound:
        pass
    return {
        "loaded": True,
        "signature_valid": bool(csr.is_signature_valid),
        "signature_algorithm": csr.signature_algorithm_oid.dotted_string,
        "subject": subject,
        "sans": sans,
        "other_names": other_names,
        "public_key": key_info(csr),
    }


def main():
    pems = json.load(sys.stdin)
    json.dump([report(pem) for pem in pems], sys.stdout)


if __name__ == "__main__":
    main()
