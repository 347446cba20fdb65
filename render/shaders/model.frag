#version 330
// One MMD material. Both shadings start from the colour MMD composes for the material (its
// default shader): saturate(diffuse × light + ambient) × texture, then the sphere map (.sph
// multiplies, .spa adds), with MMD's light colour 154/255.
// - TOON (MMD's look): that colour × the toon ramp sampled at 0.5 - 0.5 n·l, light =
//   MMD_LIGHT × (ambient + directional) of the Lighting.
// - PHONG (THA1's light terms): that colour, composed at MMD's own light (MMD_LIGHT; the
//   renderer bakes saturate(diffuse × MMD_LIGHT + ambient) into u_diffuse, ambient 0), ×
//   (ambient + directional × max(0, n·l)) / PHONG_REFERENCE. PHONG_REFERENCE is ambient +
//   directional of the default Lighting (0.5 + 0.5 = 1): there a front-facing surface shows the
//   author's colours exactly (as MMD and TOON do on the ramp's lit half); the pipeline's ambient
//   in [0.5, 1.2] brightens it by up to 1.7× and surfaces turned away darken towards ambient.
// The light points along -z, so n·l = n.z; sphere maps are looked up with the normal (the
// camera is a fixed front view, so model and view frames agree). Output is straight alpha; the
// blend state accumulates premultiplied colour and coverage alpha. SPECULAR (0/1) adds material
// specular. OPAQUE (0/1) builds the variant for materials whose alpha is 1 everywhere: drawn
// without blending or discard (the same pixels), so llvmpipe can depth-test before shading.
// TEXTURED (0/1): 0 for materials without a texture (sampling the white 1×1 texture gives 1);
// SPHERE (0/1): 0 for materials without a sphere map (a fetch in a branch not taken still costs
// llvmpipe its time).
// RAMP (0/1, PHONG only): the material has parts of the face (mmd_loader.face_parts; v_face
// marks their vertices), whose author saw them through the toon ramp: there the directional
// term takes the ramp's shape, relative to its lit end, instead of max(0, n·l) (evaluated per
// vertex: v_ramp, model.vert). A face turned from the light darkens as far as its ramp
// says (for most faces: not at all on the lit side), so the face's geometry (boxy sockets,
// facets, a nose ridge) does not show as grey plates that MMD never draws; a front-facing
// surface still shows the author's colours exactly.
// MMD_LIGHT and PHONG_REFERENCE are defined by render/renderer.py.
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
flat in float v_face;
#if RAMP
in vec3 v_ramp;  // the face's light term per vertex (model.vert), interpolated
#endif
out vec4 f_color;

// The sphere map (mode 1 multiplies, 2 adds) applied to `color`.
vec4 with_sphere(vec4 color, vec3 n) {
#if SPHERE
    if (u_sphere_mode > 0) {
        vec3 sphere = texture(u_sphere, vec2(n.x * 0.5 + 0.5, 0.5 - n.y * 0.5)).rgb;
        color.rgb = u_sphere_mode == 2 ? color.rgb + sphere : color.rgb * sphere;
    }
#endif
    return color;
}

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
    color = with_sphere(color * tex, n);
    color.rgb *= texture(u_toon, vec2(0.5, clamp(0.5 - lambert * 0.5, 0.0, 1.0))).rgb;
#if SPECULAR
    color.rgb += u_specular * u_light * pow(max(lambert, 0.0), max(u_specular_power, 1.0));
#endif
#else
    vec4 color = with_sphere(u_diffuse * tex, n);  // u_diffuse: MMD's colour, baked
#if RAMP
    // A ramp flat at its lit end is exactly 1 across the face (interpolation may round a hair
    // below it).
    vec3 ramp = mix(v_ramp, vec3(1.0), step(0.9995, v_ramp));
    vec3 shape = v_ramp.r >= 0.0 ? ramp : vec3(max(lambert, 0.0));
    color.rgb *= (u_ambient + u_directional * shape) / PHONG_REFERENCE;
#else
    color.rgb *= (u_ambient + u_directional * max(lambert, 0.0)) / PHONG_REFERENCE;
#endif
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
