/* xml_find.h — a tiny, bounds-checked reader for the XML answers of SOAP devices: a
 * well-formedness check, "first element with this name" and the decoded text of an element.
 * No DTDs, no namespace resolution (names are compared as written, prefix included), no
 * allocation: every function works on the caller's buffer, which need not be NUL-terminated. */
#ifndef AG_XML_FIND_H
#define AG_XML_FIND_H

#include <stddef.h>

#define AG_XML_MAX_DEPTH 64   /* element nesting */
#define AG_XML_MAX_NAME 128   /* bytes of an element or attribute name */
#define AG_XML_MAX_TEXT 65536 /* bytes of one run of text (or CDATA) */

/* An element found in a buffer: offsets into it. */
typedef struct ag_xml_elem {
    size_t start, end; /* the content, between the start tag and the end tag */
    size_t next;       /* just past the end tag: where the search for a sibling goes on */
} ag_xml_elem;

/* Check that buf[0..len) is one XML document we can read: an optional declaration, comments
 * and processing instructions, exactly one root element, tags balanced and nested at most
 * AG_XML_MAX_DEPTH deep, names at most AG_XML_MAX_NAME bytes, attribute values quoted, every
 * entity one of &lt; &gt; &amp; &quot; &apos; or a numeric reference, no run of text longer than
 * AG_XML_MAX_TEXT, no DOCTYPE. 0, or -1 with "what at byte N" in err. */
int ag_xml_check(const char *buf, size_t len, char *err, size_t errlen);
/* True when s is a name the finder can look for: an XML name ("sys:productName") or
 * "*:local" (any prefix or none), at most AG_XML_MAX_NAME bytes. */
int ag_xml_name_ok(const char *s);
/* The first element called name that starts in buf[from..len), at any depth. 1 with *out
 * filled, 0 when there is none, -1 when the markup is broken before it ends. */
int ag_xml_find(const char *buf, size_t len, size_t from, const char *name, ag_xml_elem *out);
/* The text of buf[0..len) (an element's content): entities decoded, CDATA taken as it is,
 * comments skipped, surrounding white space trimmed; NUL-terminated into out. 0, or -1 (it holds
 * elements, a bad entity, or more than outlen - 1 bytes) with the reason in err. */
int ag_xml_text(const char *buf, size_t len, char *out, size_t outlen, char *err, size_t errlen);
/* s with & < > " ' written as entities, like snprintf: at most cap bytes into out (NUL
 * included; out may be NULL when cap is 0); returns the length the whole text needs. */
size_t ag_xml_escape(const char *s, char *out, size_t cap);

#endif
