# mod_certsync: built with apxs (apache2-dev) into $(O)/mod_certsync.so, never installed
# into the system. apxs/libtool write their objects next to the sources, so the sources
# are copied into $(O)/apache-module/ and compiled there. The core is linked in
# statically (out/libcertsync.a is -fPIC), its symbols kept local to the module.

APXS             ?= apxs
APACHE_MOD_DIR   := $(O)/apache-module
APACHE_MOD_SRCS  := $(sort $(wildcard apache-module/*.c))
APACHE_MOD_HDRS  := $(wildcard apache-module/*.h)
APACHE_MOD_WARN  := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wformat=2 -Wno-missing-field-initializers
APACHE_MOD_FLAGS := -std=gnu11 -D_GNU_SOURCE $(APACHE_MOD_WARN) -I$(abspath common/include) \
                    $(shell pkg-config --cflags $(PKGS) 2>/dev/null)

$(O)/mod_certsync.so: $(APACHE_MOD_SRCS) $(APACHE_MOD_HDRS) $(wildcard common/include/*.h) \
                      $(O)/libcertsync.a apache-module/module.mk
	@command -v $(APXS) >/dev/null || { echo "apxs is missing: apt-get install apache2-dev (make deps)" >&2; exit 1; }
	@rm -rf $(APACHE_MOD_DIR) && mkdir -p $(APACHE_MOD_DIR)
	cp $(APACHE_MOD_SRCS) $(APACHE_MOD_HDRS) $(APACHE_MOD_DIR)/
	cd $(APACHE_MOD_DIR) && $(APXS) -c -o mod_certsync.la \
	    $(foreach f,$(APACHE_MOD_FLAGS),-Wc,$(f)) \
	    -Wl,-Wl,--exclude-libs,ALL \
	    $(notdir $(APACHE_MOD_SRCS)) $(abspath $(O)/libcertsync.a) $(LIBS) >build.log 2>&1 \
	    || { cat build.log >&2; exit 1; }
	@! grep -n 'warning:' $(APACHE_MOD_DIR)/build.log >&2 || { echo "mod_certsync: warnings (above)" >&2; exit 1; }
	cp $(APACHE_MOD_DIR)/.libs/mod_certsync.so $@

MODULE_ALL += $(O)/mod_certsync.so

# make install: into Apache's module directory (apxs), Debian's when apxs is absent
APACHE_MODULES_DIR ?= $(or $(shell $(APXS) -q LIBEXECDIR 2>/dev/null),/usr/lib/apache2/modules)
INSTALL_ENV += APACHE_MODULES_DIR=$(APACHE_MODULES_DIR)
