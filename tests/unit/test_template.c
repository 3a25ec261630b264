/* test_template.c - job templates, the pure part (src/server/template.h):
 * the parameter merge of a submission, the no-secrets rule of publishing,
 * the search match and the tag rule. */
#include <jansson.h>

#include "common/yamljson.h"
#include "server/template.h"
#include "test.h"

static const char *const PROTO =
    "# a comment\n"
    "protocolVersion: 2\n"
    "name: sweep\n"
    "type: job\n"
    "parameters:\n"
    "  lr: 0.01\n"
    "  epochs: 3\n"
    "  model: resnet\n"
    "prerequisites:\n"
    "  - {type: dockerimage, name: img, uri: 'debian:12'}\n"
    "taskRoles:\n"
    "  main:\n"
    "    dockerImage: img\n"
    "    resourcePerInstance: {cpu: 1, memoryMB: 128, gpu: 0}\n"
    "    commands: ['echo <% $parameters.lr %> <% $parameters.model %>']\n";

/* Merge with the given parameters (JSON text) into a JSON document. */
static json_t *merged(const char *params_json, const char *name, const char *vc, pai_err_t *rc)
{
    json_t *params = params_json ? json_loads(params_json, 0, NULL) : NULL;
    tpl_submit_t s = {.parameters = params,
                      .name = name,
                      .vc = vc,
                      .template_id = "alice~sweep",
                      .template_owner = "alice"};
    char *out = NULL;
    pai_error_t e = PAI_ERROR_INIT;
    *rc = tpl_merge(PROTO, strlen(PROTO), &s, &out, &e);
    json_t *doc = out ? yjson_from_text(out, strlen(out)) : NULL;
    free(out);
    pai_error_free(&e);
    json_decref(params);
    return doc;
}

TEST(merge_overrides_only_the_given_parameters)
{
    pai_err_t rc;
    json_t *doc = merged("{\"lr\": \"0.003\", \"epochs\": 7}", NULL, NULL, &rc);
    CHECK_INT_EQ(rc, PAI_OK);
    json_t *p = json_object_get(doc, "parameters");
    CHECK_STR_EQ(json_string_value(json_object_get(p, "lr")), "0.003");
    CHECK_INT_EQ(json_integer_value(json_object_get(p, "epochs")), 7);
    CHECK_STR_EQ(json_string_value(json_object_get(p, "model")), "resnet");
    CHECK_STR_EQ(json_string_value(json_object_get(doc, "name")), "sweep");
    json_decref(doc);
}

TEST(merge_keeps_floats_short_and_the_document_valid)
{
    pai_err_t rc;
    json_t *params = json_loads("{\"model\": \"vit\"}", 0, NULL);
    tpl_submit_t s = {.parameters = params, .template_id = "a~b", .template_owner = "a"};
    char *out = NULL;
    rc = tpl_merge(PROTO, strlen(PROTO), &s, &out, NULL);
    CHECK_INT_EQ(rc, PAI_OK);
    CHECK_STR_CONTAINS(out, "0.01");
    CHECK(strstr(out, "0.0100000") == NULL);
    tpl_protocol_t p;
    CHECK_INT_EQ(tpl_protocol_check(out, strlen(out), false, &p, NULL), PAI_OK);
    tpl_protocol_free(&p);
    free(out);
    json_decref(params);
}

TEST(merge_sets_name_vc_and_records_the_template)
{
    pai_err_t rc;
    json_t *doc = merged(NULL, "sweep-7", "research", &rc);
    CHECK_INT_EQ(rc, PAI_OK);
    CHECK_STR_EQ(json_string_value(json_object_get(doc, "name")), "sweep-7");
    CHECK_STR_EQ(
        json_string_value(json_object_get(json_object_get(doc, "defaults"), "virtualCluster")),
        "research");
    json_t *t = json_object_get(json_object_get(doc, "extras"), "template");
    CHECK_STR_EQ(json_string_value(json_object_get(t, "id")), "alice~sweep");
    CHECK_STR_EQ(json_string_value(json_object_get(t, "owner")), "alice");
    json_decref(doc);
}

TEST(merge_replaces_an_earlier_template_record)
{
    const char *y = "protocolVersion: 2\nname: x\ntype: job\n"
                    "extras: {template: {id: bob~old, owner: bob}, gangAllocation: false}\n";
    tpl_submit_t s = {.template_id = "carol~new", .template_owner = "carol"};
    char *out = NULL;
    CHECK_INT_EQ(tpl_merge(y, strlen(y), &s, &out, NULL), PAI_OK);
    json_t *doc = yjson_from_text(out, strlen(out));
    json_t *x = json_object_get(doc, "extras");
    CHECK_STR_EQ(json_string_value(json_object_get(json_object_get(x, "template"), "id")),
                 "carol~new");
    CHECK(json_is_false(json_object_get(x, "gangAllocation")));
    json_decref(doc);
    free(out);
}

TEST(merge_refuses_undeclared_parameters_and_bad_values)
{
    pai_err_t rc;
    json_decref(merged("{\"momentum\": 0.9}", NULL, NULL, &rc));
    CHECK_INT_EQ(rc, PAI_E_INVALID);
    json_decref(merged("{\"lr\": [1, 2]}", NULL, NULL, &rc));
    CHECK_INT_EQ(rc, PAI_E_INVALID);
    json_decref(merged("{\"lr\": null}", NULL, NULL, &rc));
    CHECK_INT_EQ(rc, PAI_E_INVALID);
    json_decref(merged("[1]", NULL, NULL, &rc));
    CHECK_INT_EQ(rc, PAI_E_INVALID);
    json_decref(merged(NULL, "no/slash", NULL, &rc));
    CHECK_INT_EQ(rc, PAI_E_INVALID);
}

TEST(merge_message_names_the_parameter)
{
    json_t *params = json_loads("{\"momentum\": 0.9}", 0, NULL);
    tpl_submit_t s = {.parameters = params, .template_id = "a~b"};
    char *out = NULL;
    pai_error_t e = PAI_ERROR_INIT;
    CHECK_INT_EQ(tpl_merge(PROTO, strlen(PROTO), &s, &out, &e), PAI_E_INVALID);
    CHECK_STR_CONTAINS(pai_error_msg(&e), "parameters.momentum");
    CHECK(out == NULL);
    pai_error_free(&e);
    json_decref(params);
}

TEST(check_keeps_the_text_and_reads_name_image_parameters)
{
    tpl_protocol_t p;
    CHECK_INT_EQ(tpl_protocol_check(PROTO, strlen(PROTO), false, &p, NULL), PAI_OK);
    CHECK_STR_EQ(p.yaml, PROTO); /* comments kept: nothing to change */
    CHECK_STR_EQ(p.job_name, "sweep");
    CHECK_STR_EQ(p.image, "debian:12");
    CHECK_STR_EQ(p.description, "");
    CHECK_INT_EQ(json_object_size(p.parameters), 3);
    CHECK_INT_EQ(json_array_size(p.warnings), 0);
    tpl_protocol_free(&p);
}

TEST(check_refuses_secrets_or_strips_them)
{
    char *y = str_printf("%ssecrets:\n  token: s3cr3t\n  user: bob\n", PROTO);
    tpl_protocol_t p;
    pai_error_t e = PAI_ERROR_INIT;
    CHECK_INT_EQ(tpl_protocol_check(y, strlen(y), false, &p, &e), PAI_E_INVALID);
    CHECK_STR_CONTAINS(pai_error_msg(&e), "secrets section (token, user)");
    CHECK(p.yaml == NULL);
    pai_error_free(&e);
    CHECK_INT_EQ(tpl_protocol_check(y, strlen(y), true, &p, NULL), PAI_OK);
    CHECK(strstr(p.yaml, "s3cr3t") == NULL && strstr(p.yaml, "secrets") == NULL);
    CHECK_INT_EQ(json_array_size(p.warnings), 1);
    CHECK_STR_CONTAINS(json_string_value(json_array_get(p.warnings, 0)), "removed the secrets");
    tpl_protocol_free(&p);
    free(y);
}

TEST(check_refuses_written_out_registry_passwords_only)
{
    const char *base = "protocolVersion: 2\nname: a\ntype: job\nprerequisites:\n"
                       "  - {type: dockerimage, name: img, uri: 'x', auth: {username: u, "
                       "password: %s}}\ntaskRoles:\n  m:\n    dockerImage: img\n"
                       "    resourcePerInstance: {cpu: 1, memoryMB: 128, gpu: 0}\n"
                       "    commands: [ls]\n";
    char *lit = str_printf(base, "hunter2");
    char *ref = str_printf(base, "'<% $secrets.pw %>'");
    tpl_protocol_t p;
    pai_error_t e = PAI_ERROR_INIT;
    CHECK_INT_EQ(tpl_protocol_check(lit, strlen(lit), false, &p, &e), PAI_E_INVALID);
    CHECK_STR_CONTAINS(pai_error_msg(&e), "auth.password of prerequisite img");
    pai_error_free(&e);
    CHECK_INT_EQ(tpl_protocol_check(lit, strlen(lit), true, &p, NULL), PAI_OK);
    CHECK(strstr(p.yaml, "hunter2") == NULL);
    tpl_protocol_free(&p);
    CHECK_INT_EQ(tpl_protocol_check(ref, strlen(ref), false, &p, NULL), PAI_OK);
    tpl_protocol_free(&p);
    free(lit);
    free(ref);
}

TEST(check_refuses_invalid_jobs_with_their_problems)
{
    const char *y = "protocolVersion: 2\nname: a b\n";
    tpl_protocol_t p;
    pai_error_t e = PAI_ERROR_INIT;
    CHECK_INT_EQ(tpl_protocol_check(y, strlen(y), false, &p, &e), PAI_E_PROTOCOL);
    CHECK(json_array_size(json_object_get(e.details, "errors")) > 0);
    pai_error_free(&e);
    char *big = xmalloc(TPL_MAX_YAML + 2);
    memset(big, '#', TPL_MAX_YAML + 1);
    big[TPL_MAX_YAML + 1] = '\0';
    CHECK_INT_EQ(tpl_protocol_check(big, strlen(big), false, &p, NULL), PAI_E_TOO_LARGE);
    free(big);
}

TEST(matches_every_word_in_any_field)
{
    json_t *m = xjson_pack("{ss ss s[ss] ss ss}", "title", "ResNet training", "description",
                           "ImageNet in 90 epochs", "tags", "vision", "cnn", "name", "resnet",
                           "owner", "alice");
    CHECK(tpl_matches(m, NULL));
    CHECK(tpl_matches(m, "  "));
    CHECK(tpl_matches(m, "resnet"));
    CHECK(tpl_matches(m, "IMAGENET cnn"));
    CHECK(tpl_matches(m, "alice vision"));
    CHECK(!tpl_matches(m, "resnet nlp"));
    CHECK(!tpl_matches(m, "bert"));
    json_decref(m);
}

TEST(tags_are_normalized_and_bounded)
{
    json_t *in = json_string(" Vision, CNN ,vision,,");
    json_t *out = NULL;
    CHECK_INT_EQ(tpl_tags(in, &out, NULL), PAI_OK);
    CHECK_INT_EQ(json_array_size(out), 2);
    CHECK_STR_EQ(json_string_value(json_array_get(out, 0)), "vision");
    CHECK_STR_EQ(json_string_value(json_array_get(out, 1)), "cnn");
    json_decref(out);
    json_decref(in);
    in = json_string("a b");
    CHECK_INT_EQ(tpl_tags(in, &out, NULL), PAI_E_INVALID);
    CHECK(out == NULL);
    json_decref(in);
    in = json_array();
    for (int i = 0; i < 17; i++)
        json_array_append_new(in, json_sprintf("t%d", i));
    CHECK_INT_EQ(tpl_tags(in, &out, NULL), PAI_E_INVALID);
    json_decref(in);
    in = json_pack("[i]", 1);
    CHECK_INT_EQ(tpl_tags(in, &out, NULL), PAI_E_INVALID);
    json_decref(in);
    CHECK_INT_EQ(tpl_tags(NULL, &out, NULL), PAI_OK);
    CHECK_INT_EQ(json_array_size(out), 0);
    json_decref(out);
}

RUN_TESTS(merge_overrides_only_the_given_parameters,
          merge_keeps_floats_short_and_the_document_valid,
          merge_sets_name_vc_and_records_the_template, merge_replaces_an_earlier_template_record,
          merge_refuses_undeclared_parameters_and_bad_values, merge_message_names_the_parameter,
          check_keeps_the_text_and_reads_name_image_parameters,
          check_refuses_secrets_or_strips_them, check_refuses_written_out_registry_passwords_only,
          check_refuses_invalid_jobs_with_their_problems, matches_every_word_in_any_field,
          tags_are_normalized_and_bounded)
