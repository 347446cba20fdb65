#version 330
// One MMD material. SHADING is PHONG (THA1: albedo × (ambient + directional × max(0, n·l))) or
// TOON (MMD's default shader: saturate(diffuse × light + ambient) × texture, sphere map, toon
// ramp). The light points along -z, so n·l = n.z. Output is straight alpha; the blend state
// accumulates premultiplied colour and coverage alpha. SPECULAR (0/1) adds material specular.
// OPAQUE (0/1) builds the variant for materials whose alpha is 1 everywhere: drawn without
// blending or discard (the same pixels), so llvmpipe can depth-test before shading. TEXTURED
// (0/1): 0 for materials without a texture (sampling the white 1×1 texture gives 1 exactly).
#define PHONG 0
#define TOON 1

uniform vec4 u_diffuse;
uniform vec3 u_material_ambient;
uniform vec3 u_specular;
uniform float u_specular_power;
uniform float u_ambient;
uniform float u_directional;
uniform float u_light;
uniform int u_sphere_mode;   // 0 none, 1 multiply, 2 add
uniform sampler2D u_texture; // white 1×1 when the material has none
uniform sampler2D u_sphere;
uniform sampler2D u_toon;

in vec3 v_normal;
in vec2 v_uv;
out vec4 f_color;

void main() {
    float len = length(v_normal);
    vec3 n = len > 0.0 ? v_normal / len : vec3(0.0, 0.0, 1.0);
    float lambert = n.z;
#if TEXTURED
    vec4 tex = texture(u_texture, v_uv);
#else
    const vec4 tex = vec4(1.0);
#endif
#if SHADING == TOON
    vec4 color = vec4(clamp(u_diffuse.rgb * u_light + u_material_ambient, 0.0, 1.0), u_diffuse.a);
    color *= tex;
    if (u_sphere_mode > 0) {
        vec3 sphere = texture(u_sphere, vec2(n.x * 0.5 + 0.5, 0.5 - n.y * 0.5)).rgb;
        color.rgb = u_sphere_mode == 2 ? color.rgb + sphere : color.rgb * sphere;
    }
    color.rgb *= texture(u_toon, vec2(0.5, clamp(0.5 - lambert * 0.5, 0.0, 1.0))).rgb;
#if SPECULAR
    color.rgb += u_specular * u_light * pow(max(lambert, 0.0), max(u_specular_power, 1.0));
#endif
#else
    vec4 color = u_diffuse * tex;
    color.rgb *= u_ambient + u_directional * max(lambert, 0.0);
#if SPECULAR
    color.rgb += u_specular * u_directional * pow(max(lambert, 0.0), max(u_specular_power, 1.0));
#endif
#endif
#if !OPAQUE
    if (color.a <= 0.0) {
        discard;  // like MMD's alpha test: fully transparent texels leave depth untouched
    }
#endif
    f_color = vec4(clamp(color.rgb, 0.0, 1.0), clamp(color.a, 0.0, 1.0));
}
