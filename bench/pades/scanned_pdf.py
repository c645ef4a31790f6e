"""Writes a scanned document: PAGES pages, each a 2 MiB grey image (raw
samples), classic cross-reference table: the same layout as
crates/guichet-pades/tests/memory.rs.

    python3 bench/pades/scanned_pdf.py OUT.pdf [PAGES]     # 100 pages: 209 MB
"""
import sys

W, H = 1024, 2048


def main(path, pages):
    ramp = bytes(range(251))
    samples = (ramp * (W * H // len(ramp) + 1))[: W * H]
    offsets = []
    with open(path, "wb") as f:
        pos = 0

        def put(b):
            nonlocal pos
            f.write(b)
            pos += len(b)

        def obj(n, body):
            offsets.append((n, pos))
            put(f"{n} 0 obj\n".encode())
            put(body)
            put(b"\nendobj\n")

        put(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
        obj(1, b"<</Type/Catalog/Pages 2 0 R>>")
        kids = " ".join(f"{3 + 3 * i} 0 R" for i in range(pages))
        obj(2, f"<</Type/Pages/Kids[{kids}]/Count {pages}>>".encode())
        for i in range(pages):
            page, content, image = 3 + 3 * i, 4 + 3 * i, 5 + 3 * i
            obj(page, (f"<</Type/Page/Parent 2 0 R/MediaBox[0 0 612 792]/Resources<</XObject<</Im0 {image} 0 R>>>>"
                       f"/Contents {content} 0 R>>").encode())
            ops = b"q 612 0 0 792 0 0 cm /Im0 Do Q"
            obj(content, f"<</Length {len(ops)}>>\nstream\n".encode() + ops + b"\nendstream")
            obj(image, (f"<</Type/XObject/Subtype/Image/Width {W}/Height {H}/ColorSpace/DeviceGray"
                        f"/BitsPerComponent 8/Length {W * H}>>\nstream\n").encode() + samples + b"\nendstream")
        size = 3 + 3 * pages
        xref = pos
        put(f"xref\n0 {size}\n0000000000 65535 f\r\n".encode())
        for _, off in sorted(offsets):
            put(f"{off:010} 00000 n\r\n".encode())
        put(f"trailer\n<</Size {size}/Root 1 0 R>>\nstartxref\n{xref}\n%%EOF\n".encode())


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 100)
