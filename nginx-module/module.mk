# ngx_http_certsync_module: built as a dynamic module against an nginx source tree.
#
#   make modules                      against Debian's nginx-dev tree (/usr/share/nginx/src,
#                                     configured with its conf_flags: loads into Debian's nginx)
#   make modules NGINX_SRC=~/nginx    against an upstream nginx (>= 1.22) source tree
#
# The tree is copied into $(O)/nginx-src (the original is never written to) and configured
# with --add-dynamic-module, again only when NGINX_SRC or this build glue changes; then
# `make modules` rebuilds the .so when the module or libcertsync changes.
# No root is needed once the packages of nginx-module/deps.txt are installed.

NGINX_SRC      ?= /usr/share/nginx/src
NGX_MOD_SO     := $(O)/ngx_http_certsync_module.so
NGX_STREAM_SO  := $(O)/ngx_stream_certsync_module.so
NGX_MOD_BUILD  := $(O)/nginx-src
# what Debian's own binary was built with, so that the module matches it
NGX_MOD_CC_OPT := -g -O2 -fstack-protector-strong -Wformat -Werror=format-security -fPIC \
                  -D_FORTIFY_SOURCE=2
NGX_MOD_LD_OPT := -Wl,-z,relro -Wl,-z,now -fPIC
# an upstream tree without Debian's conf_flags gets the flags the module needs
NGX_MOD_FLAGS  := --with-compat --with-http_ssl_module --with-threads
# and for ngx_stream_certsync_module, as Debian's libnginx-mod-stream is built:
# only its headers are needed (nginx-dev has no stream sources), since only
# our two .so are made, never nginx's own stream module
NGX_MOD_STREAM := --with-stream=dynamic --with-stream_ssl_module

MODULE_ALL += $(NGX_MOD_SO) $(NGX_STREAM_SO)

.PHONY: nginx-module
nginx-module: $(NGX_MOD_SO) $(NGX_STREAM_SO)

# holds the NGINX_SRC the copy was made from; rewritten (newer) only when that changes
$(O)/nginx-src.from: nginx-module-always
	@mkdir -p $(dir $@)
	@echo '$(abspath $(NGINX_SRC))' | cmp -s - $@ || echo '$(abspath $(NGINX_SRC))' > $@

nginx-module-always:

$(NGX_MOD_BUILD)/objs/Makefile: $(O)/nginx-src.from nginx-module/config nginx-module/module.mk \
                           | $(O)/libcertsync.a
	@test -d "$(NGINX_SRC)/auto" || { echo "no nginx source tree at $(NGINX_SRC)" \
	    "(install nginx-dev, or give NGINX_SRC=path)" >&2; exit 1; }
	@rm -rf $(NGX_MOD_BUILD) && mkdir -p $(NGX_MOD_BUILD)
	tar -C $(NGINX_SRC) --exclude=.git -cf - . | tar -C $(NGX_MOD_BUILD) -xf -
	cd $(NGX_MOD_BUILD) && bash -ec ' \
	    flags=($(NGX_MOD_FLAGS)); \
	    if [ -f conf_flags ]; then . ./conf_flags; flags=("$${NGX_CONF_FLAGS[@]}"); fi; \
	    flags+=($(NGX_MOD_STREAM)); \
	    conf=./configure; [ -x "$$conf" ] || conf=auto/configure; \
	    CERTSYNC_LIB=$(abspath $(O)/libcertsync.a) \
	    $$conf "$${flags[@]}" --with-cc-opt="$(NGX_MOD_CC_OPT)" \
	        --with-ld-opt="$(NGX_MOD_LD_OPT)" --add-dynamic-module=$(abspath nginx-module) \
	        > configure.log 2>&1 || { tail -20 configure.log >&2; exit 1; }'

# nginx's objs/Makefile knows which object needs which header (ngx_module_deps in config);
# this rule only has to call it when any of them changed
$(NGX_MOD_SO): $(NGX_MOD_BUILD)/objs/Makefile $(wildcard nginx-module/*.c nginx-module/*.h) \
               $(wildcard common/include/*.h) $(O)/libcertsync.a
	@rm -f $(NGX_MOD_BUILD)/objs/ngx_*_certsync_module.so   # relink with a new libcertsync.a
	env -u MAKEFLAGS -u MFLAGS $(MAKE) -C $(NGX_MOD_BUILD) -f objs/Makefile \
	    objs/ngx_http_certsync_module.so objs/ngx_stream_certsync_module.so
	cp $(NGX_MOD_BUILD)/objs/ngx_http_certsync_module.so $@
	cp $(NGX_MOD_BUILD)/objs/ngx_stream_certsync_module.so $(NGX_STREAM_SO)

# made with the http module
$(NGX_STREAM_SO): $(NGX_MOD_SO)

# make install: into nginx's own modules path (nginx -V), Debian's when nginx is absent
NGX_MODULES_PATH ?= $(or $(shell PATH=$$PATH:/usr/sbin nginx -V 2>&1 | sed -n 's/.*--modules-path=\([^ ]*\).*/\1/p'),\
                         /usr/lib/nginx/modules)
INSTALL_ENV += NGX_MODULES_PATH=$(NGX_MODULES_PATH)
