#!/usr/bin/env python3
"""Write the seed corpora of the fuzz targets into tests/fuzz/corpus/<target>/.

The seeds are committed; this script documents how they were made and
rewrites them identically. A few small, valid inputs per target are enough:
libFuzzer mutates from there, and valid ones get it past the first length
checks. Usage: tests/fuzz/make_corpus.py
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def vec(width, body):
    return len(body).to_bytes(width, "big") + body


def ext(etype, body):
    return struct.pack(">H", etype) + vec(2, body)


def sni_ext(*names):
    entries = b"".join(b"\x00" + vec(2, n) for n in names)
    return ext(0x0000, vec(2, entries))


def client_hello(exts, with_ext_block=True):
    body = b"\x03\x03" + bytes(range(32))            # legacy_version, random
    body += vec(1, bytes(32))                          # legacy_session_id
    body += vec(2, b"\x13\x01\x13\x02\xc0\x2f")       # cipher_suites
    body += vec(1, b"\x00")                            # compression_methods
    if with_ext_block:
        body += vec(2, b"".join(exts))
    return b"\x01" + len(body).to_bytes(3, "big") + body


def records(msg, sizes=None):
    out, pos = b"", 0
    for size in sizes or [len(msg)]:
        frag = msg[pos:pos + size]
        out += b"\x16\x03\x01" + vec(2, frag)
        pos += size
    assert pos >= len(msg)
    return out


SUPPORTED_VERSIONS = ext(0x002b, vec(1, b"\x03\x04\x03\x03"))
GROUPS = ext(0x000a, vec(2, b"\x00\x1d\x00\x17"))
KEY_SHARE = ext(0x0033, vec(2, b"\x00\x1d" + vec(2, bytes(32))))
ECH = ext(0xfe0d, b"\x00\x00\x01\x00\x01\x42" + vec(2, bytes(8)) + vec(2, bytes(16)))


def sni_seeds():
    base = [SUPPORTED_VERSIONS, GROUPS, KEY_SHARE]
    hello = client_hello([sni_ext(b"example.com")] + base)
    return {
        "tls13_sni": records(hello),
        "no_sni": records(client_hello(base)),
        "ech": records(client_hello([sni_ext(b"public.example")] + base + [ECH])),
        "split_records": records(hello, [3, 40, len(hello) - 43]),
        "two_names": records(client_hello([sni_ext(b"a.test", b"b.test")])),
        "no_extensions": records(client_hello([], with_ext_block=False)),
        "with_next_flight": records(hello) + b"\x14\x03\x03\x00\x01\x01",
        # Generated mode (see hello_gen.h): 'G', flags, then type/len/body.
        "gen_basic": b"G\x03" + ext(0, b"example.com") + SUPPORTED_VERSIONS,
        "gen_long_sni": b"G\x00\x00\x00\xff\xff" + b"a" * 63 + b"." + b"b" * 191,
        "gen_names_ech": b"G\x01" + ext(0, b"a.test,b.test") + ECH,
        "gen_no_extensions": b"G\x04",
    }


def dns_query(qname, qtype, rd=True, edns=None, opcode=0, extra=b""):
    flags = (opcode << 11) | (0x0100 if rd else 0)
    msg = struct.pack(">HHHHHH", 0x1234, flags, 1, 0, 0, 1 if edns else 0)
    for label in qname.split(b"."):
        if label:
            msg += vec(1, label)
    msg += b"\x00" + struct.pack(">HH", qtype, 1)
    if edns:
        size, do = edns
        msg += b"\x00" + struct.pack(">HHIH", 41, size, 0x8000 if do else 0, 0)
    return msg + extra


def dns_seeds():
    return {
        "a": dns_query(b"example.com", 1),
        "aaaa_edns": dns_query(b"WwW.Example.COM", 28, edns=(1232, True)),
        "txt_edns_big": dns_query(b"secret.attacker.example", 16, edns=(4096, False)),
        "root_any": dns_query(b"", 255, rd=False),
        "trailing": dns_query(b"example.com", 1, extra=b"\x00\x00"),
        "notify": dns_query(b"example.com", 6, opcode=4),
    }


def http_target_seeds():
    return {
        "absolute": b"http://example.com/path?q=1",
        "userinfo_port": b"http://user:pw@Example.COM:8080/",
        "ipv6": b"http://[::1]:80/x",
        "query_only": b"http://a.b?x=1",
        "authority": b"example.com:443",
        "authority_v6": b"[2001:db8::1]:443",
        "two_ats": b"http://allowed.com@evil.com/",
    }


def acl_seeds():
    rules = (b"github.com\n*.npmjs.org\n!bad.github.com\napi-*.example.com\n"
             b"*.cdn-*.example.net\n1.2.3.4\n[::1]\nhttps://secure.test # tls only\n")
    names = (b"github.com\nx.bad.github.com\napi-v1.example.com\n"
             b"a.cdn-7.example.net\nregistry.npmjs.org\n1.2.3.4\n::ffff:1.2.3.4\n"
             b"SECURE.test.\n127.1\n")
    return {
        "rules_and_names": rules + b"\x00" + names,
        "rules_only": b"example.com, *.example.org\n!http://ads.example.com\n",
        "bad_rule": b"good.test\n*\n\x00good.test\n",
    }


def http_forward_seeds():
    """Byte 0: bit 0 response stream, bit 1 transparent / HEAD request,
    bit 2 client closes after the response, bit 3 feed all at once."""
    get = b"GET http://example.com/a?b HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n"
    post = (b"POST http://example.com:8080/up HTTP/1.1\r\nHost: x\r\n"
            b"Content-Length: 5\r\n\r\nhello")
    chunked = (b"PUT http://[::1]/c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"3;ext\r\nabc\r\n0\r\nTrailer: x\r\n\r\n")
    smuggled = b"GET /smuggled HTTP/1.1\r\nHost: evil.test\r\n\r\n"
    attack = (b"POST http://allowed.test/ HTTP/1.1\r\nHost: allowed.test\r\n"
              b"Connection: Content-Length\r\nContent-Length: %d\r\n\r\n" % len(smuggled)
              + smuggled)
    transparent = (b"POST /x HTTP/1.1\r\nHost: Allowed.Test:8080\r\nConnection: keep-alive, Upgrade"
                   b"\r\nUpgrade: websocket\r\nContent-Length: 2\r\n\r\nokGET / HTTP/1.0\r\n\r\n")
    resp = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n\r\nhello"
    resp_chunked = (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked"
                    b"\r\n\r\n4\r\nabcd\r\n0\r\n\r\n")
    resp_attack = (b"HTTP/1.1 200 OK\r\nConnection: Content-Length\r\nContent-Length: 5"
                   b"\r\n\r\nhello")
    resp_eof = b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\nuntil the end"
    return {
        "get_pipelined": b"\x00" + get + post + get,
        "chunked_ipv6": b"\x08" + chunked,
        "attack_connection_content_length": b"\x00" + attack,
        "transparent_upgrade_http10": b"\x02" + transparent,
        "connect": b"\x00CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
        "resp_length": b"\x01" + resp,
        "resp_interim_chunked": b"\x01" + resp_chunked,
        "resp_head": b"\x03" + resp,
        "resp_attack_connection_content_length": b"\x01" + resp_attack,
        "resp_eof_client_close": b"\x05" + resp_eof,
        "resp_eof_chunked_out": b"\x09" + resp_eof,
    }


def url_rules_seeds():
    """Rules-file text ('!' = block list), a NUL, then a request target."""
    rules = (b"http://h.test/ok/*\nGET,HEAD http://*.h.test/repos/org/*\n"
             b"!http://h.test/ok/admin/*\nhttp://x.test/search?q=*\n!DELETE http://x.test/*\n")
    return {
        "traversal": rules + b"\x00/ok/../no/x",
        "encoded_dots": rules + b"\x00/ok/%2e%2E/no/x?a=b",
        "encoded_slash": rules + b"\x00/ok/..%2fno//x/./y",
        "ambiguous": rules + b"\x00/a//../b",
        "query": rules + b"\x00/search?q=/../x",
        "target_only": b"/A/%7e/%41b/../c/.",
        "bad_rule": b"ftp://h.test/\nhttp://h.test:80/x\nGET http://h.test/a/../b\x00/x",
    }


def dlp_seeds():
    """A flags byte (bit 0: a length byte and a literal follow), two bytes of
    chunk size, then text."""
    jwt = (b"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0."
           b"SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c")
    return {
        "github_query": b"\x00\x00\x07GET /x?t=ghp_A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8&y=1",
        "escaped": b"\x00\x00\x03/x?t=%67hp_A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8",
        "aws_name": b"\x00\x00\x05akiaiosfo.dnn7example.evil.example",
        "aws_tail": b"\x00\x00\x02k=AKIAIOSFODNN7EXAMPLEX",
        "pem_form": b"\x00\x00\x04key=-----BEGIN+RSA+PRIVATE+KEY-----%0AMII",
        "jwt": b"\x00\x00\x11Authorization: Bearer " + jwt,
        "slack_openai": b"\x00\x01\x00xoxb-123456789012-abc sk-ant-api03-abcdefghijABCDEFGHIJ0123"
                        b"456789_-xyz sk-proj-abcDEF123_-abcDEF123_-abcDEF123_-abcDEF123_",
        "literal": b"\x01\x04s3cr3t-v4lue-0\x00\x02body s3cr3t%2Dv4lue-0 and more",
    }


def ruleset_seeds():
    return {
        "reference": b"version: 1\nrules:\n  - domain: github.com\n    subdomains: true\n"
                     b"  - domain: registry.npmjs.org\n    subdomains: false\n",
        "extensions": b"version: 1\nrules:\n  - \"*.githubusercontent.com\"\n"
                      b"  - url: https://github.com/o/*\n    methods: [GET, HEAD]\n"
                      b"block:\n  - domain: gist.github.com\n"
                      b"urls:\n  - POST https://api.github.com/graphql\n"
                      b"block_urls:\n  - https://github.com/o/secret/*\n"
                      b"ports: [8443, 9000-9002]\n",
        "flow": b"{version: 1, rules: [{domain: a.example, subdomains: false}, b.example], "
                b"ports: [\"81\"]}\n",
        "errors": b"version: 1\nrules:\n  - &a a.example\n  - *a\n---\nversion: 2\n",
    }


def upstream_proxy_seeds():
    """Selector byte: even, a parent proxy's answer to CONNECT; odd, a URL."""
    return {
        "established": b"\x00HTTP/1.1 200 Connection established\r\n\r\nSSH-2.0-x\r\n",
        "headers": b"\x00HTTP/1.0 200 OK\r\nVia: 1.1 squid\r\nX-A:b\r\n\r\n",
        "auth_required": b"\x00HTTP/1.1 407 Proxy Authentication Required\r\n"
                         b"Proxy-Authenticate: Basic realm=\"x\"\r\nContent-Length: 0\r\n\r\n",
        "bare_lf": b"\x00HTTP/1.1 200 OK\n\n",
        "url": b"\x01http://proxy.corp:3128",
        "url_creds": b"\x01http://us%40er:p%3Ass@[fd00::1]:8080/",
        "no_scheme": b"\x01user:pw@10.0.0.1:3128",
    }


def main():
    for target, seeds in [("fuzz_sni", sni_seeds()), ("fuzz_dns_msg", dns_seeds()),
                          ("fuzz_http_target", http_target_seeds()),
                          ("fuzz_acl", acl_seeds()),
                          ("fuzz_http_forward", http_forward_seeds()),
                          ("fuzz_url_rules", url_rules_seeds()),
                          ("fuzz_dlp", dlp_seeds()),
                          ("fuzz_ruleset", ruleset_seeds()),
                          ("fuzz_upstream_proxy", upstream_proxy_seeds())]:
        d = os.path.join(HERE, "corpus", target)
        os.makedirs(d, exist_ok=True)
        for name, data in seeds.items():
            with open(os.path.join(d, name), "wb") as f:
                f.write(data)


if __name__ == "__main__":
    main()
