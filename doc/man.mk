# make man: the man pages, from doc/*.scd (scdoc) into $(O)/man/. A page's "%options
# PROGRAM" and "%commands" lines are filled in from the built programs' --help
# (doc/gen-man.py), so the pages name every command and option the programs take.
# tests/interop/test_man.py checks the rest (config keys, directives) against the parsers.

MAN_SRCS  := $(sort $(wildcard doc/*.scd))
MAN_PAGES := $(MAN_SRCS:doc/%.scd=$(O)/man/%)

.PHONY: man
man: $(MAN_PAGES)

$(O)/man/%: doc/%.scd doc/gen-man.py $(O)/certsync $(TOMCAT_BIN)
	@command -v scdoc >/dev/null || { echo "scdoc is missing: apt-get install scdoc (make deps)" >&2; exit 1; }
	@mkdir -p $(dir $@)
	/usr/bin/python3 doc/gen-man.py $< $(O)/certsync $(TOMCAT_BIN) > $@.scd
	scdoc < $@.scd > $@.tmp
	@rm -f $@.scd && mv $@.tmp $@
