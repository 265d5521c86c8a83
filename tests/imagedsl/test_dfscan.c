/*
 * test_dfscan.c - the Dockerfile COPY/ADD source scanner: logical lines, directives,
 * heredocs, flags, JSON and shell forms, variable scoping and expansion, and errors.
 *
 * Each case is Dockerfile text and either the sources expected ("LINE:COL:text", with a '+'
 * before the text for ADD) or the error expected (code, line, column, part of the message).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "dfscan.h"
#include "testutil.h"

#define MAX_WANT 16

struct scan_case {
	const char *name;
	const char *prelude;
	const char *text;
	const char *want[MAX_WANT]; /* NULL-terminated */
	int rc;                     /* 0, or the error expected */
	int line, column;           /* of the error */
	const char *message;        /* a part of the error message */
};

/* The fixtures' Dockerfiles, byte for byte. */
#define CONT_HEAD                                                                          \
	"FROM python:3.12-slim\n"                                                          \
	"# COPY commented.txt /nope/\n"                                                    \
	"  COPY indented.txt /indented/\n"                                                 \
	"COPY first.txt \\\n"                                                              \
	"# a comment inside the continuation is dropped\n"                                \
	"     second.txt \\\n"                                                             \
	"\n"                                                                               \
	"     /both/\n"                                                                    \
	"COPY --from builder spaced-from.txt /x/\n"
#define CONT_TAIL "RUN echo \"COPY not-a-copy.txt /x/\"\n"
#define CONT_10 "COPY only-one-token\n"
#define CONT_11 "COPY ${SRC_DIR}/env.txt /env/\n"
#define CONT_12 "COPY $HOME /home/\n"

#define CRLF                                                                               \
	"FROM alpine:3.19\r\n"                                                             \
	"COPY win.txt /win.txt\r\n"                                                        \
	"COPY --chown=1000:1000 \\\r\n"                                                    \
	"    other.txt /other.txt\r\n"                                                     \
	"RUN echo ok\r\n"

#define FLAGS                                                                              \
	"# syntax=docker/dockerfile:1\n"                                                   \
	"FROM node:20 AS builder\n"                                                        \
	"WORKDIR /src\n"                                                                   \
	"COPY package.json ./\n"                                                           \
	"RUN npm ci\n"                                                                     \
	"FROM node:20-slim\n"                                                              \
	"COPY --from=builder /src/dist /dist\n"                                            \
	"copy lower.txt /lower/\n"                                                         \
	"COPY --chown=app:app --chmod=644 owned.txt /owned/\n"                             \
	"COPY --link linked.txt /linked/\n"                                                \
	"ADD added.txt /added/\n"                                                          \
	"RUN echo done\n"

#define FORMS                                                                              \
	"FROM alpine:3.19\n"                                                               \
	"COPY [\"json one.txt\", \"json-two.txt\", \"/json/\"]\n"                          \
	"COPY \"quoted dir\" /quoted/\n"                                                   \
	"COPY a.txt \\\n"                                                                  \
	"     b.txt /multi/\n"                                                             \
	"COPY <<EOF2 /etc/heredoc.conf\n"                                                  \
	"hello\n"                                                                          \
	"EOF2\n"                                                                           \
	"COPY missing.txt /missing/\n"                                                     \
	"COPY assets/ /assets/\n"

#define GLOBS                                                                              \
	"FROM alpine:3.19\n"                                                               \
	"COPY *.cfg /cfg/\n"                                                               \
	"COPY \"*.cfg\" /cfg2/\n"                                                          \
	"COPY [\"*.txt\", \"/txt/\"]\n"                                                    \
	"COPY assets/**/*.svg /svg/\n"                                                     \
	"COPY \"assets/**\" /all-assets/\n"

#define WEIRD                                                                              \
	"FROM busybox\n"                                                                   \
	"COPY [\"it's.txt\", \"/w/\"]\n"                                                   \
	"COPY br[a]ck.txt /w/\n"                                                           \
	"COPY \"dollar$sign.txt\" /w/\n"                                                   \
	"COPY 'dollar$sign.txt' /w2/\n"

#define OK(n, pre, txt, ...) {.name = n, .prelude = pre, .text = txt, .want = {__VA_ARGS__}}
#define ERR(n, pre, txt, code, l, c, msg)                                                  \
	{.name = n, .prelude = pre, .text = txt, .rc = code, .line = l, .column = c,        \
	 .message = msg}

static const struct scan_case fixture_cases[] = {
	ERR("cont: a COPY with one argument is an error", NULL,
	    CONT_HEAD CONT_10 CONT_11 CONT_12 CONT_TAIL, DTN_EINVAL, 10, 1,
	    "COPY requires at least two arguments"),
	ERR("cont: an undefined variable is an error", NULL,
	    CONT_HEAD "# gone\n" CONT_11 CONT_12 CONT_TAIL, DTN_EINVAL, 11, 6,
	    "variable \"SRC_DIR\" is not defined (COPY sources are resolved when dtn runs)"),
	ERR("cont: a variable of the base image is not known", NULL,
	    CONT_HEAD "# gone\n# gone\n" CONT_12 CONT_TAIL, DTN_EINVAL, 12, 6,
	    "variable \"HOME\" is not defined"),
	OK("cont: comments, indentation, continuations, --from", NULL, CONT_HEAD CONT_TAIL,
	   "3:8:indented.txt", "4:6:first.txt", "4:1:second.txt"),
	OK("crlf", NULL, CRLF, "2:6:win.txt", "3:1:other.txt"),
	OK("flags: --from= skipped, other flags ignored, ADD scanned", NULL, FLAGS,
	   "4:6:package.json", "8:6:lower.txt", "9:34:owned.txt", "10:13:linked.txt",
	   "11:5:+added.txt"),
	/* docker build splits COPY arguments at blanks before it reads quotes */
	ERR("forms: a quoted blank does not join two words", NULL, FORMS, DTN_ESYNTAX, 3, 6,
	    "unterminated double quote"),
	OK("globs are sources like any other", NULL, GLOBS, "2:6:*.cfg", "3:6:*.cfg", "4:6:*.txt",
	   "5:6:assets/**/*.svg", "6:6:assets/**"),
	ERR("weird: Docker reads quotes inside JSON strings", NULL, WEIRD, DTN_ESYNTAX, 2, 6,
	    "unterminated single quote"),
	ERR("weird: $ inside double quotes expands", NULL,
	    "FROM busybox\nCOPY br[a]ck.txt /w/\nCOPY \"dollar$sign.txt\" /w/\n", DTN_EINVAL, 3, 6,
	    "variable \"sign\" is not defined"),
	OK("weird: $ inside single quotes is literal", NULL,
	   "FROM busybox\nCOPY br[a]ck.txt /w/\nCOPY 'dollar$sign.txt' /w2/\n", "2:6:br[a]ck.txt",
	   "3:6:dollar$sign.txt"),
};

static const struct scan_case line_cases[] = {
	OK("empty text", NULL, "", NULL),
	OK("only comments and blanks", NULL, "# a\n\n   \n# COPY x /y\n", NULL),
	OK("text shorter than its buffer", NULL, "FROM x\nCOPY a b\0COPY c d\n", "2:6:a"),
	OK("no final newline", NULL, "FROM x\nCOPY a /d/", "2:6:a"),
	OK("keywords in any case", NULL, "from x\nCoPy a /d/\nadd b /d/\nAdD c /d/\n", "2:6:a",
	   "3:5:+b", "4:5:+c"),
	OK("tabs and leading blanks", NULL, "FROM x\n\t COPY\ta\t /d/\n", "2:8:a"),
	OK("a byte-order mark", NULL, "\xEF\xBB\xBF" "FROM x\nCOPY a /d/\n", "2:6:a"),
	OK("continuation: comment and blank lines are dropped", NULL,
	   "FROM x\nCOPY a \\\n\n  # note \\\n\t\n  b \\\n /d/\n", "2:6:a", "2:1:b"),
	OK("continuation: trailing blanks after the escape", NULL,
	   "FROM x\nCOPY a \\  \t\n b /d/\n", "2:6:a", "2:1:b"),
	OK("continuation: an escaped escape does not continue", NULL,
	   "FROM x\nCOPY a b\\\\\nCOPY c /d/\n", "2:6:a", "3:6:c"),
	OK("continuation: a comment line never continues", NULL,
	   "FROM x\n# COPY x \\\nCOPY c /d/\n", "3:6:c"),
	OK("continuation: the keyword on the next line", NULL, "FROM x\n\\\nCOPY a /d/\n", "2:1:a"),
	OK("continuation: open at the end", NULL, "FROM x\nCOPY a b \\", "2:6:a"),
	OK("continuation: glued to the previous text", NULL, "FROM x\nCOPY a\\\nb /d/\n", "2:6:ab"),
};

static const struct scan_case directive_cases[] = {
	OK("escape=` changes continuation and escapes", NULL,
	   "# escape=`\nFROM x\nCOPY C:\\dir\\a.txt `\n  b`\"c /d/\n", "3:6:C:\\dir\\a.txt",
	   "3:1:b\"c"),
	OK("escape=` inside double quotes", NULL, "#escape = `\nFROM x\nCOPY \"a`\"b`$c\" /d/\n",
	   "3:6:a\"b$c"),
	OK("escape=\\ is the default", NULL, "# escape=\\\nFROM x\nCOPY a\\ b /d/\n", "3:6:a",
	   "3:9:b"),
	OK("directives in any case, after syntax", NULL,
	   "# syntax=docker/dockerfile:1\n# ESCAPE=`\nFROM x\nCOPY a` b /d/\n", "4:6:a",
	   "4:9:b"),
	OK("a directive after an instruction is a comment", NULL,
	   "FROM x\n# escape=`\nCOPY a`b \\\n c /d/\n", "3:6:a`b", "3:1:c"),
	OK("a blank line ends the directives", NULL, "\n# escape=`\nFROM x\nCOPY a\\ b /d/\n",
	   "4:6:a", "4:9:b"),
	OK("a comment ends the directives", NULL, "# hello\n# escape=`\nFROM x\nCOPY a\\ b /d/\n",
	   "4:6:a", "4:9:b"),
	OK("an unknown directive ends the directives", NULL,
	   "# foo=bar\n# escape=`\nFROM x\nCOPY a\\ b /d/\n", "4:6:a",
	   "4:9:b"),
	ERR("an invalid escape character", NULL, "# escape=x\nFROM x\n", DTN_ESYNTAX, 1, 10,
	    "invalid escape directive"),
	ERR("a repeated directive", NULL, "# escape=`\n# escape=`\nFROM x\n", DTN_ESYNTAX, 2, 1,
	    "only one escape parser directive"),
	OK("the prelude's directive applies to the text", "# escape=`\nFROM x\n",
	   "COPY a`\n b /d/\n", "1:6:a", "1:1:b"),
};

static const struct scan_case heredoc_cases[] = {
	OK("heredoc bodies are not instructions", NULL,
	   "FROM x\nRUN cat <<EOF > /f\nCOPY no.txt /x/\nEOF\nCOPY yes.txt /d/\n", "5:6:yes.txt"),
	OK("<<- strips tabs from the terminator", NULL,
	   "FROM x\nRUN <<-EOT\n\tCOPY no /x\n\tEOT\nCOPY yes /d/\n", "5:6:yes"),
	OK("<<WORD without '-' needs the exact terminator", NULL,
	   "FROM x\nRUN <<EOT\n\tEOT\nCOPY no /x\nEOT\nCOPY yes /d/\n", "6:6:yes"),
	OK("quoted terminators, several heredocs, other sources kept", NULL,
	   "FROM x\nCOPY <<\"A\" <<'B' real.txt /d/\nCOPY no /x\nA\nCOPY no2 /x\nB\n"
	 "COPY after /d/\n", "2:18:real.txt", "7:6:after"),
	OK("a heredoc terminator may end in CR", NULL,
	   "FROM x\r\nRUN <<EOF\r\nCOPY no /x\r\nEOF\r\nCOPY yes /d/\r\n", "5:6:yes"),
	OK("a quoted <<EOF is a word", NULL, "FROM x\nCOPY \"<<EOF\" /d/\nCOPY b /d/\n",
	   "2:6:<<EOF", "3:6:b"),
	OK("no heredoc in the JSON form", NULL, "FROM x\nRUN [\"cat\", \"<<EOF\"]\nCOPY a /d/\n",
	   "3:6:a"),
	OK("an unterminated heredoc swallows the rest", NULL, "FROM x\nRUN <<EOF\nCOPY a /d/\n",
	   NULL),
	OK("ONBUILD heredocs are skipped too", NULL,
	   "FROM x\nONBUILD RUN <<EOF\nCOPY no /x\nEOF\nCOPY yes /d/\n", "5:6:yes"),
	OK("a heredoc opened in the prelude", "FROM x\nRUN <<EOF\n",
	   "COPY no /x\nEOF\nCOPY yes /d/\n", "3:6:yes"),
	OK("the heredoc of a prelude COPY", "FROM x\nCOPY <<EOF /d\n",
	   "COPY no /x\nEOF\nCOPY y /d/\n", "3:6:y"),
};

static const struct scan_case arg_cases[] = {
	OK("--from=stage and --from stage are skipped", NULL,
	   "FROM x\nCOPY --from=b x /d/\nCOPY --from b y /d/\nCOPY --FROM=b z /d/\nCOPY k /d/\n",
	   "5:6:k"),
	OK("flags are skipped; -- ends them", NULL,
	   "FROM x\nCOPY --chown=\"a:b\" --chmod=644 --link --parents --exclude=*.md -- "
	   "--odd /d/\n",
	   "2:67:--odd"),
	OK("ADD flags", NULL,
	   "FROM x\nADD --checksum=sha256:abc --keep-git-dir --chown=1 a.tgz /d/\n", "2:52:+a.tgz"),
	OK("ADD skips URLs", NULL,
	   "FROM x\nADD https://example.com/a.tgz git@github.com:o/r.git local.tgz /d/\n",
	   "2:54:+local.tgz"),
	ERR("COPY refuses URLs", NULL, "FROM x\nCOPY http://example.com/a /d/\n", DTN_EINVAL, 2, 6,
	    "is a URL"),
	OK("ONBUILD COPY has no sources", NULL, "FROM x\nONBUILD COPY a /d/\nONBUILD ADD b /d/\n",
	   NULL),
	OK("JSON with escapes", NULL,
	   "FROM x\nCOPY [ \"a\\u0020b\" , \"\\ud83d\\ude00\", \"c\\\\\\\\d\", \"/d/\" ] \n",
	   "2:6:a b", "2:6:\xF0\x9F\x98\x80", "2:6:c\\d"),
	/* Go would read a lone surrogate as U+FFFD; jansson refuses it, so it is the shell form */
	OK("JSON: a lone surrogate is not JSON here", NULL, "FROM x\nCOPY [\"\\ud800x\", \"/d/\"]\n",
	   "2:6:[\\ud800x,"),
	OK("JSON with trailing text is the shell form", NULL, "FROM x\nCOPY [\"a\", \"b\"] c /d/\n",
	   "2:6:[a,", "2:12:b]", "2:17:c"),
	OK("malformed JSON is the shell form", NULL, "FROM x\nCOPY [a, \"/d/\"]\n", "2:6:[a,"),
	ERR("JSON with non-strings is an error, as in Docker", NULL,
	    "FROM x\nCOPY [\"a\", 1, {\"k\": [true, null, -1.5e3]}, \"/d/\"]\n", DTN_EINVAL, 2, 6,
	    "arrays must be comprised of strings only"),
	ERR("JSON with too few strings", NULL, "FROM x\nCOPY [\"a\"]\n", DTN_EINVAL, 2, 1,
	    "COPY requires at least two arguments"),
	ERR("JSON NUL byte", NULL, "FROM x\nCOPY [\"a\\u0000b\", \"/d/\"]\n", DTN_EINVAL, 2, 6,
	    "NUL byte"),
	ERR("COPY with no arguments", NULL, "FROM x\nADD\n", DTN_EINVAL, 2, 1,
	    "ADD requires at least two arguments"),
	ERR("COPY --from still needs two arguments", NULL, "FROM x\nCOPY --from=a b\n", DTN_EINVAL,
	    2, 1, "COPY requires"),
	OK("quotes and escapes", NULL,
	   "FROM x\nCOPY 'a$b' \"c\\\"d\\\"\\$e\\x\" f\\g h\\\\i /d/\n", "2:6:a$b",
	   "2:12:c\"d\"$e\\x", "2:26:fg", "2:30:h\\i"),
	ERR("an unterminated double quote", NULL, "FROM x\nCOPY \"abc /d/\n", DTN_ESYNTAX, 2, 6,
	    "unterminated double quote"),
	OK("the destination is not expanded", NULL, "FROM x\nCOPY a $HOME/\n", "2:6:a"),
	OK("a URL that is not a source is fine", NULL, "FROM x\nCOPY a http://x/\n", "2:6:a"),
};

static const struct scan_case var_cases[] = {
	OK("ENV forms", NULL,
	   "FROM x\nENV A=1 B=\"two words\" C='$A'\nENV D $A and $B\nCOPY $A ${B} $C \"$D\" /d/\n",
	   "4:6:1", "4:9:two words", "4:14:$A", "4:17:1 and two words"),
	OK("ENV values use the values before the instruction", NULL,
	   "FROM x\nENV A=1\nENV A=2 B=$A\nCOPY $A$B /d/\n", "4:6:21"),
	OK("a defined but empty variable", NULL, "FROM x\nENV E=\nCOPY a$E /d/\n", "3:6:a"),
	OK("${V:-w} ${V-w} ${V:+w} ${V+w}", NULL,
	   "FROM x\nENV S=s E=\nCOPY ${S:-d}${E:-d}${U:-d} ${S-d}${E-d}${U-d}. "
	   "${S:+w}${E:+w}${U:+w}. ${S+w}${E+w}${U+w}. /d/\n",
	   "3:6:sdd", "3:28:sd.", "3:48:w.", "3:71:ww."),
	OK("a default word is expanded and may hold quotes", NULL,
	   "FROM x\nENV S=s\nCOPY ${U:-\"x\"$S} ${U:-${S}z} /d/\n", "3:6:xs", "3:18:sz"),
	OK("an unknown variable in an unused default is fine", NULL,
	   "FROM x\nENV S=s\nCOPY ${S:-$NOPE} /d/\n", "3:6:s"),
	ERR("an unknown variable in a used default is an error", NULL,
	    "FROM x\nCOPY ${U:-$NOPE} /d/\n", DTN_EINVAL, 2, 6, "variable \"NOPE\" is not defined"),
	ERR("${V?} on an unset variable", NULL, "FROM x\nCOPY ${U?} /d/\n", DTN_EINVAL, 2, 6,
	    "variable \"U\" is not allowed to be unset"),
	ERR("${V:?message} on an empty variable", NULL,
	    "FROM x\nENV E=\nCOPY ${E:?please-set-it} /d/\n", DTN_EINVAL, 3, 6,
	    "variable \"E\": please-set-it"),
	OK("${V:?} on a set variable", NULL, "FROM x\nENV S=s\nCOPY ${S:?} ${S?} /d/\n", "3:6:s",
	   "3:13:s"),
	OK("\\$ and a lone $ are literal", NULL, "FROM x\nCOPY \\$HOME a$ $. /d/\n", "2:6:$HOME",
	   "2:13:a$", "2:16:$."),
	ERR("bad substitution", NULL, "FROM x\nCOPY ${} /d/\n", DTN_ESYNTAX, 2, 6,
	    "bad substitution"),
	ERR("missing brace", NULL, "FROM x\nCOPY ${A /d/\n", DTN_ESYNTAX, 2, 6, "missing '}'"),
	ERR("pattern substitutions are not supported", NULL, "FROM x\nENV A=a\nCOPY ${A#a} /d/\n",
	    DTN_EUNSUPPORTED, 3, 6, "not supported"),
	OK("ARG defaults", NULL, "FROM x\nARG A=1 B=$A\nARG C=${A}2\nCOPY $A $C /d/\n", "4:6:1",
	   "4:9:12"),
	OK("ENV wins over ARG", NULL, "FROM x\nARG A=arg\nENV A=env\nARG A=arg2\nCOPY $A /d/\n",
	   "5:6:env"),
	ERR("an ARG without a default has no value", NULL, "FROM x\nARG V\nCOPY $V /d/\n",
	    DTN_EINVAL, 3, 6, "variable \"V\" has no value"),
	OK("an ARG without a default takes a ${V:-d} default", NULL,
	   "FROM x\nARG V\nCOPY ${V:-d} /d/\n", "3:6:d"),
	OK("global ARGs need a bare ARG in the stage", NULL,
	   "ARG G=glob\nARG H\nFROM x\nCOPY ${G:-not-visible} /d/\nARG G\nCOPY $G /d/\n",
	   "4:6:not-visible", "6:6:glob"),
	ERR("a global ARG redeclared without a default has none", NULL,
	    "ARG H\nFROM x\nARG H\nCOPY $H /d/\n", DTN_EINVAL, 4, 6, "has no value"),
	OK("global ARGs see each other", NULL, "ARG A=1\nARG B=$A.2\nFROM x\nARG B\nCOPY $B /d/\n",
	   "5:6:1.2"),
	OK("FROM clears ENV and ARG", NULL,
	   "FROM x AS one\nENV A=1\nARG B=2\nFROM y\nCOPY ${A:-a} ${B:-b} /d/\n", "5:6:a",
	   "5:14:b"),
	OK("FROM an earlier stage keeps its ENV", NULL,
	   "FROM x AS One\nENV A=1\nARG B=2\nFROM one AS two\nCOPY $A ${B:-b} /d/\n"
	 "FROM two\nENV C=3\nCOPY $A$C /d/\n", "5:6:1", "5:9:b", "8:6:13"),
	OK("FROM names an earlier stage through a global ARG", NULL,
	   "ARG BASE=one\nFROM x AS one\nENV A=1\nFROM ${BASE}\nCOPY $A /d/\n", "5:6:1"),
	ERR("an ENV using an undefined variable is not known", NULL,
	    "FROM x\nENV P=/x:$PATH\nCOPY $P /d/\n", DTN_EINVAL, 3, 6,
	    "variable \"P\" is not known: its value uses \"PATH\""),
	OK("an unknown variable still counts as set for ${V+w}", NULL,
	   "FROM x\nENV P=$PATH\nCOPY ${P+set} /d/\n", "3:6:set"),
	ERR("an unknown variable is no use to ${V:-w}", NULL,
	    "FROM x\nENV P=$PATH\nCOPY ${P:-d} /d/\n", DTN_EINVAL, 3, 6,
	    "variable \"P\" is not known"),
	ERR("an ENV with a broken value is not known", NULL, "FROM x\nENV Q=\"open\nCOPY $Q /d/\n",
	    DTN_EINVAL, 3, 6, "variable \"Q\" has a value dtn cannot work out"),
	OK("the prelude's ENV is visible", "FROM x\nENV D=dir\n", "COPY $D/a /d/\n", "1:6:dir/a"),
	OK("a prelude without a final newline", "FROM x\nENV D=dir", "COPY $D /d/", "1:6:dir"),
	OK("the prelude's errors and sources are ignored", "FROM x\nCOPY only\nCOPY $NOPE /d/\n",
	   "COPY a /d/\n", "1:6:a"),
	OK("an instruction continued from the prelude", "FROM x\nRUN echo \\\n",
	   "COPY a /b/\nCOPY c /d/\n", "2:6:c"),
	OK("ENV before FROM does nothing", NULL, "ENV A=1\nFROM x\nCOPY ${A:-none} /d/\n",
	   "3:6:none"),
	ERR("special parameters are not defined", NULL, "FROM x\nCOPY a$1 /d/\n", DTN_EINVAL, 2, 6,
	    "variable \"1\" is not defined"),
	ERR("ADD says ADD", NULL, "FROM x\nADD $NOPE /d/\n", DTN_EINVAL, 2, 5,
	    "(ADD sources are resolved when dtn runs)"),
};

/* "LINE:COL:text", '+' marking ADD. */
static void render(const dtn__df_source *s, char *buf, size_t size)
{
	snprintf(buf, size, "%d:%d:%s%s", s->line, s->column, s->is_add ? "+" : "", s->text);
}

static void run_case(const struct scan_case *c)
{
	dtn__df_source *src = (dtn__df_source *)1;
	size_t n = 99, want = 0;
	dtn_error err;
	char got[512];
	int rc;

	dtn_error_clear(&err);
	snprintf(err.file, sizeof(err.file), "keep");
	rc = dtn__df_scan(&src, &n, c->prelude, c->text, strlen(c->text), &err);
	print_message("case: %s -> %d %s\n", c->name, rc, rc < 0 ? err.message : "");
	while (want < MAX_WANT && c->want[want])
		want++;
	assert_int_equal(rc, c->rc);
	assert_string_equal(err.file, "keep");
	if (rc < 0) {
		assert_null(src);
		assert_int_equal(n, 0);
		assert_int_equal(err.code, c->rc);
		assert_int_equal(err.line, c->line);
		assert_int_equal(err.column, c->column);
		assert_non_null(strstr(err.message, c->message));
		return;
	}
	for (size_t i = 0; i < n && i < want; i++) {
		render(&src[i], got, sizeof(got));
		assert_string_equal(got, c->want[i]);
	}
	assert_int_equal(n, want);
	if (!n)
		assert_null(src);
	dtn__df_sources_free(src, n);
}

static void run_cases(const struct scan_case *cases, size_t n)
{
	for (size_t i = 0; i < n; i++)
		run_case(&cases[i]);
}

static void test_imagedsl_dfscan__fixtures(void **state)
{
	(void)state;
	run_cases(fixture_cases, DTN__ARRAY_LEN(fixture_cases));
}

static void test_imagedsl_dfscan__lines(void **state)
{
	(void)state;
	run_cases(line_cases, DTN__ARRAY_LEN(line_cases));
}

static void test_imagedsl_dfscan__directives(void **state)
{
	(void)state;
	run_cases(directive_cases, DTN__ARRAY_LEN(directive_cases));
}

static void test_imagedsl_dfscan__heredocs(void **state)
{
	(void)state;
	run_cases(heredoc_cases, DTN__ARRAY_LEN(heredoc_cases));
}

static void test_imagedsl_dfscan__arguments(void **state)
{
	(void)state;
	run_cases(arg_cases, DTN__ARRAY_LEN(arg_cases));
}

static void test_imagedsl_dfscan__variables(void **state)
{
	(void)state;
	run_cases(var_cases, DTN__ARRAY_LEN(var_cases));
}

/* A NUL byte inside the text is an ordinary byte: the scan goes on past it. */
static void test_imagedsl_dfscan__nul_in_text(void **state)
{
	static const char text[] = "FROM x\nRUN a\0b\nCOPY c /d/\nCOPY e\0f /d/\n";
	dtn__df_source *src;
	dtn_error err;
	size_t n;

	(void)state;
	dtn_error_clear(&err);
	assert_int_equal(dtn__df_scan(&src, &n, NULL, text, sizeof(text) - 1, &err), DTN_EINVAL);
	assert_int_equal(err.line, 4);
	assert_non_null(strstr(err.message, "NUL byte"));
	assert_int_equal(dtn__df_scan(&src, &n, NULL, text, 24, NULL), 0);
	assert_int_equal(n, 1);
	assert_string_equal(src[0].text, "c");
	dtn__df_sources_free(src, n);
}

/* Expansion is bounded: a value doubling on each line stops being known, not memory. */
static void test_imagedsl_dfscan__expansion_is_bounded(void **state)
{
	dtn__buf b = DTN__BUF_INIT;
	dtn__df_source *src;
	dtn_error err;
	size_t n;

	(void)state;
	dtn__buf_puts(&b, "FROM x\nENV A=0123456789abcdef\n");
	for (int i = 0; i < 40; i++)
		dtn__buf_puts(&b, "ENV A=$A$A\n");
	dtn__buf_puts(&b, "COPY ${A+ok} /d/\nCOPY $A /d/\n");
	assert_false(b.failed);
	dtn_error_clear(&err);
	assert_int_equal(dtn__df_scan(&src, &n, NULL, b.data, b.len, &err), DTN_EINVAL);
	assert_int_equal(err.line, 44);
	assert_non_null(strstr(err.message, "variable \"A\""));
	dtn__buf_free(&b);
}

/* Every allocation failure gives DTN_ENOMEM and leaks nothing; then the scan succeeds. */
static void test_imagedsl_dfscan__allocation_failures(void **state)
{
	static const char prelude[] = "# escape=\\\nARG G=g\nFROM x AS a\nENV E=e\n";
	static const char text[] =
		"FROM a AS b\nARG G\nENV F=\"$E f\" H $G\nCOPY [\"j$E\", \"k\", \"/d/\"]\n"
		"COPY --chown=1 ${G:-x}y 'z' \\\n  w${E:+q} /d/\nRUN <<EOF\nCOPY n /n\nEOF\n"
		"ADD https://x/y l \"$F\" /d/\nONBUILD COPY <<-A o /d/\n\tA\n";
	dtn__df_source *src;
	size_t n;
	long calls;
	int rc = DTN_ENOMEM;

	(void)state;
	for (long fail = 1; rc == DTN_ENOMEM && fail < 100000; fail++) {
		dtn_error err;

		dtn_error_clear(&err);
		tu_fail_alloc_after(fail);
		rc = dtn__df_scan(&src, &n, prelude, text, sizeof(text) - 1, &err);
		calls = tu_alloc_calls();
		tu_alloc_reset();
		if (rc == DTN_ENOMEM) {
			assert_null(src);
			assert_int_equal(err.code, DTN_ENOMEM);
			assert_true(calls >= fail);
		}
	}
	assert_int_equal(rc, 0);
	assert_int_equal(n, 7);
	assert_string_equal(src[0].text, "je");
	assert_string_equal(src[2].text, "gy");
	assert_string_equal(src[4].text, "wq");
	assert_string_equal(src[5].text, "l");
	assert_string_equal(src[6].text, "e f");
	dtn__df_sources_free(src, n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_imagedsl_dfscan__fixtures),
		cmocka_unit_test(test_imagedsl_dfscan__lines),
		cmocka_unit_test(test_imagedsl_dfscan__directives),
		cmocka_unit_test(test_imagedsl_dfscan__heredocs),
		cmocka_unit_test(test_imagedsl_dfscan__arguments),
		cmocka_unit_test(test_imagedsl_dfscan__variables),
		cmocka_unit_test(test_imagedsl_dfscan__nul_in_text),
		cmocka_unit_test(test_imagedsl_dfscan__expansion_is_bounded),
		cmocka_unit_test(test_imagedsl_dfscan__allocation_failures),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
